"""Your own images end to end: README's folder walk-through run as written, on real garments the
embedded model knows, in class folders named by id."""
import importlib
import json
import re
import shlex

import numpy as np
import pytest
from helpers import (
    ROOT,
    compose,
    hydra_app,
    page,
    records,
    suite_in_process,
    write_image_folder,
)
from hydra.utils import instantiate
from PIL import Image

pytestmark = pytest.mark.slow
FOLDERS = {"n01": "sandal", "n02": "trouser", "n03": "bag"}  # as README's example names them
PER_CLASS = 16


def write_garments(root, per_class: int = PER_CLASS) -> None:
    """Fashion-MNIST images of FOLDERS' classes as PNG files, root/<split>/<folder>/<i>.png."""
    data = instantiate(compose().dataset)
    for split in ("train", "test"):
        images = data.load(split=split)
        for folder, name in FOLDERS.items():
            label = list(data.classnames).index(name)
            members = [i for i, target in enumerate(images.targets.tolist())
                       if target == label][:per_class]
            (root / split / folder).mkdir(parents=True)
            for i in members:
                images[i][0].save(root / split / folder / f"{i}.png")


def readme_commands() -> list[list[str]]:
    """The command lines of README's folder example, continuation lines joined."""
    section = page("README.md").split("## Your own data")[1]
    block = section.split("```bash\n")[1].split("```")[0].replace("\\\n", " ")
    return [shlex.split(line.split("  #")[0]) for line in block.splitlines() if line.strip()]


def test_readmes_folder_example_runs_ccup_a_baseline_the_report_and_export_as_written(
        tmp_path, monkeypatch):
    """README's commands in its reader's folder, in this process: run.py's command line through
    Hydra (hydra_app), then the report's (`python -m ccup.report`, its main)."""
    write_garments(tmp_path / "my_images")
    commands = readme_commands()
    assert [command[:2] for command in commands] == [
        ["python", "run.py"], ["python", "-m"], ["ls", "multirun/*/*/checkpoint/manifest.json"]]
    monkeypatch.chdir(tmp_path)
    ended = hydra_app(ROOT / "run.py", *commands[0][2:])
    assert ended.exit is None, ended.stdout
    # a failure exits: SystemExit fails the test
    importlib.import_module(commands[1][2]).main(commands[1][3:])
    records = [json.loads(path.read_text())
               for path in sorted((tmp_path / "results" / "records").glob("*.json"))]
    by_method = {record["choices"]["method"]: record for record in records}
    assert (sorted(by_method) == ["ccup", "grad_ascent"]
            and all(r["status"] == "complete" for r in records))
    for record in records:
        metrics = record["metrics"]
        # folders named by `names`
        assert record["config"]["dataset"]["classnames"] == list(FOLDERS.values())
        # labels by name, not position
        assert metrics["forget/acc_before"] > 80 and metrics["retain/acc_before"] > 80
        assert metrics["forget/acc"] < metrics["forget/acc_before"] - 30
        # forget.classes=[n01] is the sandal folder
        assert metrics["class/sandal/acc"] == metrics["forget/acc"]
    report = (tmp_path / "results" / "report.md").read_text()
    assert (re.search(r"^\| ccup ", report, re.MULTILINE)
            and re.search(r"^\| grad_ascent ", report, re.MULTILINE))
    manifests = [json.loads(path.read_text()) for path in tmp_path.glob(commands[2][1])]
    assert sorted(m["method"] for m in manifests) == ["ccup", "grad_ascent"]
    assert all(m["forget"] == ["sandal"] and m["classnames"] == list(FOLDERS.values())
               for m in manifests)


def test_an_image_cut_short_ends_the_job_with_one_line_naming_it(tmp_path, capfd):
    root = write_image_folder(tmp_path / "pets", {"n01": [10, 20], "n02": [30, 40], "n03": [50]})
    bad = root / "test" / "n02" / "3.png"
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(noise).save(bad)
    bad.write_bytes(bad.read_bytes()[:1000])  # a copy that stopped halfway
    result = suite_in_process(tmp_path, "debug=default", "dataset=folder", f"dataset.root={root}",
                              "forget.classes=[n01]")
    # the exit message is the line the interpreter prints, and the only one naming the image
    assert result.exit == (
        f"error: cannot read image {bad} (image file is truncated): replace or remove it")
    assert "cannot read image" not in result.stdout and "Traceback" not in result.stdout
    assert capfd.readouterr().err == ""
    (record,) = records(tmp_path)
    assert record["status"] == "failed" and record["error"].startswith(f"cannot read image {bad}")
