"""W&B as a job's tracker, read back from the offline run with the suite's reader (ccup.loggers):
the curves of the training a method does, the exported model as an artifact, the run's group, and
the listing of a results folder's runs for those without an account."""
import json

import pytest
import wandb
from helpers import records, run_job

from ccup.loggers import main, wandb_run


@pytest.fixture(scope="module")
def tracked(tmp_path_factory) -> tuple:
    """NegGrad+ on the digits, 20 steps logged every 5, its model exported; then the same job again
    (rerun=true), whose weights the method's cache holds. The folder, and the two runs: the one that
    trained, and the cache hit."""
    tmp_path = tmp_path_factory.mktemp("tracked")
    job = ("dataset=digits", "forget.classes=['3']", "method=neggrad_plus", "method.steps=20",
           "trainer.log_every_n_steps=5", "export=true", "eval=[]",
           f"method.cache_dir={tmp_path}/cache")
    for again in (False, True):
        run_job(tmp_path, *job, f"rerun={again}", debug=False, folder=f"outputs-{int(again)}")
    wandb.teardown()  # W&B writes a run's file in the background: whole once its service ended
    runs = [wandb_run(path) for path in (tmp_path / "results" / "wandb").glob("offline-run-*")]
    trained, hit = sorted(runs, key=lambda run: run["summary"]["unlearn/cache_hit"])
    return tmp_path, trained, hit


def test_a_method_that_trains_logs_its_curve_every_log_every_n_steps(tracked):
    _, trained, _ = tracked
    curve = [row for row in trained["history"] if "unlearn/loss" in row]
    assert [row["trainer/global_step"] for row in curve] == [4, 9, 14, 19]  # 20 steps / 5
    accuracy = [row["unlearn/forget_sample_acc"] for row in curve]  # the batch's forget images'
    assert all(0 <= value <= 100 for value in accuracy)
    assert accuracy[0] > 90 > 10 > accuracy[-1]  # NegGrad+ forgets them
    assert trained["summary"]["unlearn/steps"] == 20 and trained["state"] == "finished"


def test_a_cache_hit_logs_no_curve_only_the_metrics(tracked):
    _, trained, hit = tracked
    assert not [row for row in hit["history"] if "unlearn/loss" in row]
    assert hit["summary"]["unlearn/cache_hit"] == 1
    assert hit["summary"]["forget/acc"] == trained["summary"]["forget/acc"]


def test_the_exported_model_is_a_model_artifact_of_the_run_with_its_manifest(tracked):
    tmp_path, trained, _ = tracked
    checkpoint = tmp_path / "outputs-0" / "checkpoint"
    (artifact,) = trained["artifacts"]
    manifest = json.loads((checkpoint / "manifest.json").read_text())
    assert artifact["type"] == "model" and artifact["metadata"] == manifest
    assert artifact["name"] == f"neggrad_plus-{manifest['record']}"
    assert sorted(artifact["files"]) == sorted(path.name for path in checkpoint.iterdir())
    assert "unlearned.pt" in artifact["files"]


def test_a_one_off_run_is_grouped_by_method_and_dataset(tracked):
    _, trained, hit = tracked
    assert trained["group"] == hit["group"] == "neggrad_plus-digits"


def test_the_listing_prints_the_runs_of_a_results_folder(tracked, capsys):
    tmp_path, trained, _ = tracked
    main([str(tmp_path / "results")])
    header, _, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["name", "group", "state", "forget/acc", "retain/acc", "unlearn/steps",
                              "time/job_s"]
    forget = f"{records(tmp_path)[0]['metrics']['forget/acc']:.2f}"
    assert len(rows) == 2 and all(row.startswith(trained["name"]) for row in rows)
    assert all(row.split()[-6:-3] == ["neggrad_plus-digits", "finished", forget] for row in rows)


def test_the_listing_of_a_folder_without_runs_is_one_error_line(tmp_path):
    with pytest.raises(SystemExit) as error:
        main([str(tmp_path)])
    assert str(error.value).startswith(f"error: no W&B runs in {tmp_path} or {tmp_path / 'wandb'}")
