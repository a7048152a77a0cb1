"""End to end: `python run.py` on the embedded default: the alpha sweep `make run` runs, its
records, exported checkpoints, W&B runs and the table it prints, and forget sets of several
classes."""
import json
import re

import open_clip
import pandas as pd
import pytest
import torch
from helpers import ROOT, compose, page, records, run_job, run_python, suite_in_process

from ccup.loggers import wandb_run
from ccup.projection import ccup_factors
from ccup.report import write_report
from ccup.report.files import main as report_main
from ccup.task import UnlearnTask

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def alpha_sweep(tmp_path_factory, tiny):
    """`python run.py -m alpha=0,0.5,1` on the default config, as `make run` runs it (in this
    process: what the sweep leaves is the subject, not the command's start)."""
    tmp_path = tmp_path_factory.mktemp("sweep")
    result = suite_in_process(tmp_path, "-m", "alpha=0,0.5,1", "export=true")
    assert result.exit is None, result.stdout
    return tmp_path


def test_alpha_sweep_forgets_the_class_and_keeps_the_others(alpha_sweep):
    by_alpha = {r["config"]["alpha"]: r["metrics"] for r in records(alpha_sweep)}
    assert sorted(by_alpha) == [0.0, 0.5, 1.0]
    assert all(r["status"] == "complete" and r["git_sha"] and r["git_dirty"] is not None
               for r in records(alpha_sweep))
    # Each record carries the overrides of its own job: the sweep's axis value and the command
    # line's settings.
    assert sorted(tuple(r["overrides"]) for r in records(alpha_sweep)) == [
        (f"alpha={alpha}", "export=True", f"sweep={alpha_sweep.name}",
         f"results_dir={alpha_sweep}/results")
        for alpha in (0, 0.5, 1)]
    forget = [by_alpha[a]["forget/acc"] for a in (0.0, 0.5, 1.0)]
    assert forget[0] >= forget[1] >= forget[2] and forget[2] <= 5.0
    assert by_alpha[0.0]["forget/acc"] == by_alpha[0.0]["forget/acc_before"] > 80
    for metrics in by_alpha.values():
        assert abs(metrics["retain/acc"] - metrics["retain/acc_before"]) <= 2.0
        # the other dataset
        assert abs(metrics["cross/digits/acc"] - metrics["cross/digits/acc_before"]) < 1.0
        assert metrics["cross/digits/acc_before"] > 90
        assert metrics["time/unlearn_s"] >= 0 and metrics["time/eval_s"] > 0
    assert by_alpha[0.0]["cross/digits/acc"] == by_alpha[0.0]["cross/digits/acc_before"]


def test_make_run_prints_the_table_readme_shows(alpha_sweep, capfd):
    report_main([str(alpha_sweep / "results")])  # `python -m ccup.report <folder>`
    out, err = capfd.readouterr()
    assert err == ""
    table, where = out.strip().split("\n\n")
    assert table in page("README.md") and where.startswith("full report: ")


def test_readmes_loading_snippet_reads_an_exported_model_by_its_manifest(alpha_sweep, tmp_path):
    snippet = page("running.md").split("the manifest says how to use it:\n\n```python\n")[1]
    folder = alpha_sweep / "multirun" / "2" / "checkpoint"  # alpha = 1
    script = tmp_path / "snippet.py"
    script.write_text(snippet.split("```")[0].replace("outputs/<run>/checkpoint", str(folder))
                      + "print(json.dumps({**manifest, 'shape': list(classifier.shape)}))\n")
    # a fresh interpreter with open_clip alone, as a reader would run it
    result = run_python(str(script))
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout.strip().splitlines()[-1])
    record = json.loads((alpha_sweep / "multirun" / "2" / "record.json").read_text())
    assert (manifest["record"] == record["id"]
            and manifest["alpha"] == record["config"]["alpha"] == 1.0)
    assert ((manifest["method"], manifest["forget"], manifest["model"])
            == ("ccup", ["sandal"], "ccup-tiny-p7"))
    assert manifest["settings"] == record["config"]["method"] and manifest["suite"] == "0.1.0"
    assert (manifest["shape"] == [128, 10]
            and manifest["classnames"] == record["config"]["dataset"]["classnames"])


def test_each_job_writes_its_record_into_its_output_folder_too(alpha_sweep):
    copies = [json.loads(p.read_text()) for p in (alpha_sweep / "multirun").glob("*/record.json")]
    assert sorted(c["id"] for c in copies) == sorted(r["id"] for r in records(alpha_sweep))


def test_exported_checkpoints_load_in_open_clip_with_the_projection_folded_in(alpha_sweep, tiny):
    jobs = sorted((alpha_sweep / "multirun").glob("[0-9]"))
    assert len(jobs) == 3
    data = compose().dataset
    T = UnlearnTask.of(tiny, data.classnames, data.templates, ["sandal"]).classifier  # (d, C)
    forget = data.classnames.index("sandal")
    W = ccup_factors(T[:, [forget]], T[:, [c for c in range(len(data.classnames)) if c != forget]],
                     lam=1000.0, mu=1.0)
    for job in jobs:
        folder = job / "checkpoint"
        open_clip.add_model_config(folder / "ccup-tiny-p7.json")
        model = open_clip.create_model("ccup-tiny-p7", pretrained=str(folder / "unlearned.pt"))
        alpha = json.loads((job / "record.json").read_text())["config"]["alpha"]
        # (D, d): z' = W_a z
        expected = (tiny.model.visual.proj.double() @ W.with_strength(alpha).dense().T).float()
        torch.testing.assert_close(model.visual.proj, expected, rtol=1e-5, atol=1e-6)
        assert torch.equal(model.visual.proj, tiny.model.visual.proj) == (alpha == 0)


def test_alpha_sweep_is_mirrored_in_one_offline_wandb_run_per_job(alpha_sweep):
    runs = [wandb_run(d) for d in sorted((alpha_sweep / "results" / "wandb").glob("offline-run-*"))]
    assert len(runs) == 3
    assert (len({run["group"] for run in runs}) == 1
            and all(run["job_type"] == "ccup" for run in runs))
    by_alpha = {r["config"]["alpha"]: r["metrics"] for r in records(alpha_sweep)}
    for run in runs:
        assert run["exit_code"] == 0
        # W&B stores alpha=0.0 as 0: the string keeps the sweep value
        alpha = float(run["config"]["alpha_str"])
        assert run["config"]["alpha"] == alpha
        # readable in W&B, and every override that sets the run apart (export here) in its name
        assert run["name"] == (f"ccup alpha={run['config']['alpha_str']} forget=sandal seed=0 "
                               "export=True")
        # hundreds of words no one filters runs by
        assert "synonyms" not in json.dumps(run["config"])
        assert run["tags"] == ["ccup", "tiny", "fashion_mnist"]
        for key, value in by_alpha[alpha].items():
            if not key.startswith("time/") and not key.startswith("memory/"):
                assert run["summary"][key] == pytest.approx(value), key


@pytest.fixture(scope="module")
def multi_class(tmp_path_factory, tiny):
    """Forget sets of several classes through run, evaluator and report: footwear, the protocol's
    three, a random k, each a job in this process, then the report of their records."""
    tmp_path = tmp_path_factory.mktemp("multi")
    for forget in ("footwear", "protocol_all", "random_k"):
        run_job(tmp_path, f"forget={forget}", "eval=[cross]", "logger=none", debug=False,
                folder=forget)
    write_report(tmp_path / "results")
    return tmp_path


def test_several_classes_are_forgotten_together_and_reported_as_one_forget_set(multi_class):
    by_forget = {tuple(r["config"]["forget"]["classes"]): r["metrics"]
                 for r in records(multi_class)}
    data = compose().dataset
    assert set(by_forget) >= {("sandal", "sneaker", "ankle boot"), tuple(data.protocol_forget)}
    for classes, metrics in by_forget.items():
        assert len(classes) == 3 and set(classes) <= set(data.classnames)
        assert metrics["forget/acc"] < 5 < 80 < metrics["forget/acc_before"]  # all three at once
        assert abs(metrics["retain/acc"] - metrics["retain/acc_before"]) < 5
        before = [metrics[f"class/{name}/acc_before"] for name in classes]
        # 1,000 test images per class
        assert metrics["forget/acc_before"] == pytest.approx(sum(before) / 3)
    table = pd.read_csv(multi_class / "results" / "report.csv").fillna({"classes": ""})
    # one CCUP setting, averaged over the forget sets of test classes alone (the protocol's three)
    # and, in a row of its own, over those that mix validation and test classes (footwear)
    assert set(table["method"]) == {"ccup"} and table["forget sets"].sum() == len(by_forget)
    all_test = sum(set(classes) <= set(data.test_forget) for classes in by_forget)
    assert 1 <= all_test < len(by_forget) and "ankle boot" in data.validation_forget
    assert table.set_index("classes").loc["test", "forget sets"] == all_test
    markdown = (multi_class / "results" / "report.md").read_text()
    # its own row in the per-forget-set table
    assert re.search(r"\| sandal\+sneaker\+ankle boot +\|", markdown)


def test_the_committed_benchmark_is_what_this_code_computes(tmp_path):
    """Three jobs of the committed embedded benchmark (results/benchmark/) run again by today's
    code, in this process: CCUP, a fine-tuning baseline and the blocklist give the committed
    accuracies and retrieval precisions."""
    for method in ("ccup", "grad_ascent", "mask"):
        run_job(tmp_path, "experiment=benchmark", f"method={method}", "seed=0", "forget.index=3",
                debug=False, folder=method)
    committed = {}
    for path in (ROOT / "results" / "benchmark" / "records").glob("*.json"):
        record = json.loads(path.read_text())
        config = record["config"]
        if (config["forget"]["classes"], config["seed"], config["alpha"]) == (["sandal"], 0, 1.0):
            committed[record["choices"]["method"]] = record["metrics"]
    for record in records(tmp_path):
        ours, theirs = record["metrics"], committed[record["choices"]["method"]]
        shared = [key for key in theirs if "acc" in key or key.endswith("_ap")]
        assert len(shared) > 20 and all(ours[key] == pytest.approx(theirs[key], abs=0.2)
                                        for key in shared), \
            record["choices"]["method"]
