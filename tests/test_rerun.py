"""A job run again is skipped only where it would run the same: its config (numbers in one
spelling, without what changes no number), the code it ran and its data as its record says;
otherwise it runs again, saying why in one line, and its record is replaced in place. Jobs run in
this process (helpers.run_job)."""
import json
import logging
import os
import sys

import pytest
from helpers import compose, refuse_reads_under, run_job, write_image_folder

from ccup import fingerprint
from ccup.record import canonical, config_id, record_ids, setting_ids

GREYS = {"n01": [10, 20, 30, 40, 50], "n02": [60, 70, 80, 90, 100], "n03": [110, 120, 130, 140]}


def outcome(tmp_path, caplog, *overrides: str) -> str:
    """What a job of the default config with `overrides` said of its record: `skipped`,
    `rerunning: <why>` or `ran` (no record before). Each call stands for a new command: the data's
    fingerprints are walked again."""
    fingerprint.files.cache_clear()
    caplog.set_level(logging.INFO, logger="ccup.job")
    caplog.clear()
    run_job(tmp_path, *overrides)
    said = [m for m in caplog.messages if m.startswith(("skipped:", "rerunning:"))]
    done = [m for m in caplog.messages if m.startswith("done in ")]
    assert len(said) <= 1 and len(done) == (0 if said and said[0].startswith("skipped") else 1)
    return "ran" if not said else "skipped" if said[0].startswith("skipped") else said[0]


def record_files(tmp_path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((tmp_path / "results" / "records").glob("*"))]


def test_numbers_are_one_spelling_and_export_is_not_a_setting():
    assert config_id(compose("alpha=1")) == config_id(compose("alpha=1.0")) == config_id(compose())
    assert config_id(compose("method.lam=1000")) == config_id(compose())  # the default's 1000.0
    assert config_id(compose("export=true")) == config_id(compose())
    assert setting_ids(compose("export=true", "method.lam=1000")) == setting_ids(compose())
    assert config_id(compose("method.lam=1000.5")) != config_id(compose())
    assert canonical({"a": [1.0, 2.5, True, False, 0.0]}) == {"a": [1, 2.5, True, False, 0]}
    assert [type(v) for v in canonical([True, 1.0])] == [bool, int]  # a boolean stays one


@pytest.mark.parametrize("overrides", [(), ("method=salun", "seed=2"), ("alpha=0.5", "seed=1"),
                                       ("forget.classes=[coat,bag]",)])
def test_a_records_ids_are_those_computed_one_by_one(overrides):
    # one copy of the config for all three: the seed and alpha still reach only the ids they do
    cfg = compose(*overrides)
    assert record_ids(cfg) == {"id": config_id(cfg), **setting_ids(cfg)}


@pytest.mark.slow
def test_a_folder_dataset_that_lost_images_is_run_again_and_its_record_replaced(tmp_path, tiny,
                                                                               caplog):
    root = write_image_folder(tmp_path / "pets", GREYS)
    job = ("dataset=folder", f"dataset.root={root}", "forget.classes=[n01]")
    assert outcome(tmp_path, caplog, *job) == "ran"
    assert outcome(tmp_path, caplog, *job) == "skipped"
    for grey in GREYS["n01"][1:]:  # 4 of the forget class's 5 test images
        (root / "test" / "n01" / f"{grey:03d}.jpg").unlink()
    assert outcome(tmp_path, caplog, *job) == ("rerunning: the data changed (dataset folder: 4 "
                                              "files fewer)")
    (record,) = record_files(tmp_path)  # replaced, not put beside the stale one
    assert record["status"] == "complete" and record["data"]["dataset"]["files"] == 24
    assert outcome(tmp_path, caplog, *job) == "skipped"
    write_image_folder(root, {"n02": [61]})  # an image more in each split
    assert outcome(tmp_path, caplog, *job) == ("rerunning: the data changed (dataset folder: 2 "
                                              "files more)")
    os.utime(root / "train" / "n02" / "060.jpg", ns=(0, 0))  # the same files, one replaced
    assert outcome(tmp_path, caplog, *job) == ("rerunning: the data changed (dataset folder: 26 "
                                              "files as before, but changed)")
    assert len(record_files(tmp_path)) == 1


@pytest.mark.slow
def test_a_method_of_your_own_that_changed_is_run_again(tmp_path, tiny, caplog, monkeypatch):
    package = tmp_path / "mine"
    package.mkdir()
    method = (package / "weaker.py").resolve()
    method.write_text("from ccup.method import CCUP\n\n\nclass Weaker(CCUP):\n    pass\n")
    monkeypatch.syspath_prepend(str(package))
    job = ("method._target_=weaker.Weaker", "dataset=digits", "forget.classes=['3']")
    assert outcome(tmp_path, caplog, *job) == "ran"
    (record,) = record_files(tmp_path)
    assert record["code"][str(method)] == fingerprint.file_digest(method)  # outside: by its path
    assert {"ccup/pipeline.py", "ccup/method.py", "ccup/projection.py"} <= set(record["code"])
    # no numbers
    assert not {"ccup/report/files.py", "ccup/report/records.py", "README.md"} & set(record["code"])
    assert outcome(tmp_path, caplog, *job) == "skipped"
    method.write_text(method.read_text().replace(
        "    pass", "    def __init__(self, **settings):\n        super().__init__(**settings)\n"))
    monkeypatch.delitem(sys.modules, "weaker")  # as a new command would, it imports the module anew
    assert outcome(tmp_path, caplog, *job) == f"rerunning: the code changed since the record " \
                                              f"({method})"
    assert outcome(tmp_path, caplog, *job) == "skipped"
    assert outcome(tmp_path, caplog, *job, "alpha=1") == "skipped"  # the default's alpha: 1.0
    assert outcome(tmp_path, caplog, *job, "export=true") == (
        "rerunning: export=true, and no model of this job is kept (its run exported none, or its "
        "checkpoint is gone)")
    assert outcome(tmp_path, caplog, *job, "export=true") == "skipped"  # the model is there now
    assert outcome(tmp_path, caplog, *job) == "skipped"
    assert len(record_files(tmp_path)) == 1


@pytest.mark.slow
def test_a_record_written_before_records_named_their_code_and_data_is_run_again(tmp_path, tiny,
                                                                               caplog):
    job = ("dataset=digits", "forget.classes=['5']")
    assert outcome(tmp_path, caplog, *job) == "ran"
    (path,) = (tmp_path / "results" / "records").glob("*.json")
    old = {k: v for k, v in json.loads(path.read_text()).items() if k not in ("code", "data")}
    path.write_text(json.dumps(old))
    assert outcome(tmp_path, caplog, *job) == ("rerunning: the record does not say which code and "
                                              "data it came from (an older suite wrote it)")


def test_a_fingerprint_follows_a_symlinked_root_skips_what_is_no_file_and_reads_none(tmp_path,
                                                                                    monkeypatch):
    disk = write_image_folder(tmp_path / "disk", {"a": [10, 20], "b": [30]})
    (tmp_path / "checkout").mkdir()
    data = tmp_path / "checkout" / "data"
    data.symlink_to(disk, target_is_directory=True)  # data/ on another disk, as on a cluster
    elsewhere = write_image_folder(tmp_path / "elsewhere", {"c": [40, 50]}, flat=True)
    (disk / "train" / "c").symlink_to(elsewhere / "c", target_is_directory=True)  # linked in
    os.mkfifo(disk / "train" / "a" / "pipe")  # not a regular file: not counted, never opened
    (disk / "train" / "loop").symlink_to(disk, target_is_directory=True)  # walked once
    refuse_reads_under(monkeypatch, tmp_path)
    count, size, digest = fingerprint.files(str(data), ".")
    images = [*disk.rglob("*.jpg"), *elsewhere.rglob("*.jpg")]
    assert count == 6 + 2 and size == sum(p.stat().st_size for p in images)
    assert fingerprint.files(str(disk), ".")[2] == digest  # names relative to the root
    config = {"dataset": {"name": "mine", "files": {"roots": str(data),
                                                    "globs": ["train/a", "test/b/*.jpg"]}}}
    assert fingerprint.data(config)["dataset"]["files"] == 3
