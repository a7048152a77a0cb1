"""End to end: `python run.py` on the embedded default, its records, its W&B runs, and its refusals."""
import json
import re
import subprocess
import sys
from pathlib import Path

import open_clip
import pandas as pd
import pytest
import torch
from helpers import (
    ROOT,
    SPLIT_LAYOUTS,
    config_names,
    finish,
    make_config,
    records,
    run_suite,
    start_suite,
    wandb_run,
    write_split_dataset,
)

from ccup.projection import ccup_map, with_strength
from ccup.task import UnlearnTask

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def alpha_sweep(tmp_path_factory, tiny):
    """`python run.py -m alpha=0,0.5,1` on the default config (the tiny fixture trains the model first)."""
    tmp_path = tmp_path_factory.mktemp("sweep")
    result = run_suite(tmp_path, "-m", "alpha=0,0.5,1", "export=true")
    assert result.returncode == 0, result.stderr
    return tmp_path


def test_alpha_sweep_forgets_the_class_and_keeps_the_others(alpha_sweep):
    by_alpha = {r["config"]["alpha"]: r["metrics"] for r in records(alpha_sweep)}
    assert sorted(by_alpha) == [0.0, 0.5, 1.0]
    assert all(r["status"] == "complete" and r["git_sha"] and r["git_dirty"] is not None for r in records(alpha_sweep))
    # Each record carries the overrides of its own job: the sweep's axis value and the command line's settings.
    assert sorted(tuple(r["overrides"]) for r in records(alpha_sweep)) == [
        (f"alpha={alpha}", "export=True", f"sweep={alpha_sweep.name}", f"results_dir={alpha_sweep}/results")
        for alpha in (0, 0.5, 1)]
    forget = [by_alpha[a]["forget/acc"] for a in (0.0, 0.5, 1.0)]
    assert forget[0] >= forget[1] >= forget[2] and forget[2] <= 5.0
    assert by_alpha[0.0]["forget/acc"] == by_alpha[0.0]["forget/acc_before"] > 80
    for metrics in by_alpha.values():
        assert abs(metrics["retain/acc"] - metrics["retain/acc_before"]) <= 2.0
        assert abs(metrics["cross/digits/acc"] - metrics["cross/digits/acc_before"]) < 1.0  # the other dataset
        assert metrics["cross/digits/acc_before"] > 90
        assert metrics["time/unlearn_s"] >= 0 and metrics["time/eval_s"] > 0
    assert by_alpha[0.0]["cross/digits/acc"] == by_alpha[0.0]["cross/digits/acc_before"]


def test_make_run_prints_the_table_readme_shows(alpha_sweep):
    printed = subprocess.run([sys.executable, "-m", "ccup.report", str(alpha_sweep / "results")], check=True,
                             capture_output=True, text=True).stdout
    table, where = printed.strip().split("\n\n")
    assert table in (ROOT / "README.md").read_text() and where.startswith("full report: ")


def test_each_job_writes_its_record_into_its_output_folder_too(alpha_sweep):
    copies = [json.loads(p.read_text()) for p in (alpha_sweep / "multirun").glob("*/record.json")]
    assert sorted(c["id"] for c in copies) == sorted(r["id"] for r in records(alpha_sweep))


def test_exported_checkpoints_load_in_open_clip_with_the_projection_folded_in(alpha_sweep, tiny):
    jobs = sorted((alpha_sweep / "multirun").glob("[0-9]"))
    assert len(jobs) == 3
    data = make_config().dataset
    T = UnlearnTask.of(tiny, data.classnames, data.templates, ["sandal"]).classifier  # (d, C)
    forget = data.classnames.index("sandal")
    W = ccup_map(T[:, [forget]], T[:, [c for c in range(len(data.classnames)) if c != forget]], lam=1000.0, mu=1.0)
    for job in jobs:
        folder = job / "checkpoint"
        open_clip.add_model_config(folder / "ccup-tiny-p7.json")
        model = open_clip.create_model("ccup-tiny-p7", pretrained=str(folder / "unlearned.pt"))
        alpha = json.loads((job / "record.json").read_text())["config"]["alpha"]
        expected = (tiny.model.visual.proj.double() @ with_strength(W, alpha).T).float()  # (D, d): z' = W_alpha z
        torch.testing.assert_close(model.visual.proj, expected, rtol=1e-5, atol=1e-6)
        assert torch.equal(model.visual.proj, tiny.model.visual.proj) == (alpha == 0)


def test_alpha_sweep_is_mirrored_in_one_offline_wandb_run_per_job(alpha_sweep):
    runs = [wandb_run(d) for d in sorted((alpha_sweep / "results" / "wandb").glob("offline-run-*"))]
    assert len(runs) == 3
    assert len({run["group"] for run in runs}) == 1 and all(run["job_type"] == "ccup" for run in runs)
    by_alpha = {r["config"]["alpha"]: r["metrics"] for r in records(alpha_sweep)}
    for run in runs:
        assert run["exit_code"] == 0
        alpha = float(run["config"]["alpha_str"])  # W&B stores alpha=0.0 as 0: the string keeps the sweep value
        assert run["config"]["alpha"] == alpha
        assert run["name"] == f"ccup alpha={run['config']['alpha_str']} forget=sandal seed=0"  # readable in W&B
        assert run["tags"] == ["ccup", "tiny", "fashion_mnist"]
        for key, value in by_alpha[alpha].items():
            if not key.startswith("time/") and not key.startswith("memory/"):
                assert run["summary"][key] == pytest.approx(value), key


# One case per place a job can refuse its input (config values, method settings, the forget set, the data, the
# model); every message of each place is tested where it is raised, in process (test_sweeps.py: NaN, numbers in
# quotes, seeds; test_task.py: forget sets; test_projection.py, test_baselines.py, test_adapter.py). A method's
# range check (alpha=2) fails a job of test_sweeps.py's sweep, with its W&B run marked failed.
BAD_INPUTS = {
    "alpha=nan": "alpha=nan is not a number",
    "forget.classes=[sandals]": "unknown forget class 'sandals': did you mean 'sandal'?",
    "method=finetune;method.lr=0": "lr must be a positive finite number",
    "dataset.load.roots=[/nonexistent]": "Fashion-MNIST not found in ['/nonexistent']: run `make data`",
    "model=vit_b32_openai;model.name=ViT-B-99": "unknown open_clip model 'ViT-B-99'",
    "model=vit_b32_openai": "could not download the 'openai' weights of ViT-B-32",
    "model=vit_b32_openai;model.pretrained=README.md": "README.md is not a checkpoint of ViT-B-32",
    "method=retrain;model=vit_b32_openai": "comes with pretrained weights whose training data and recipe the suite",
    "method=retrain;forget.classes=[t-shirt,trouser,pullover,dress,coat,sandal,shirt,sneaker,bag,ankle boot]":
        "cannot forget every class",
}


@pytest.fixture(scope="module")
def refusals(tmp_path_factory, tiny) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    """Every bad-input run, started together: each spends most of its time importing libraries before it refuses,
    so together they take a fraction of one after another. (`tiny`: the runs that load the embedded model find it
    trained.)"""
    started = {}
    try:
        for override in BAD_INPUTS:
            tmp_path = tmp_path_factory.mktemp("refused")
            started[override] = tmp_path, start_suite(tmp_path, *override.split(";"), "logger=none",
                                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return {override: (tmp_path, finish(process)) for override, (tmp_path, process) in started.items()}
    finally:
        for _, process in started.values():
            if process.poll() is None:  # only after a failure above: no run outlives the fixture
                process.kill()
                process.wait()


@pytest.mark.parametrize("override", BAD_INPUTS)
def test_bad_input_gets_one_clear_error_line(refusals, override):
    tmp_path, result = refusals[override]
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: ") and BAD_INPUTS[override] in last_line
    assert "Traceback" not in result.stderr
    failed = records(tmp_path)
    assert len(failed) == 1 and failed[0]["status"] == "failed" and BAD_INPUTS[override] in failed[0]["error"]


# Every method but the oracle, whose whole recipe takes minutes: the oracle has its own test below, on a reduced one.
APPROXIMATE = [name for name in config_names("method") if name != "retrain"]


@pytest.fixture(scope="module")
def comparison(tmp_path_factory, tiny):
    """`python run.py -m experiment=compare alpha=1 eval=[]`: CCUP and every baseline on the default forget set."""
    tmp_path = tmp_path_factory.mktemp("compare")
    result = run_suite(tmp_path, "-m", "experiment=compare", f"method={','.join(APPROXIMATE)}", "alpha=1", "eval=[]",
                       "logger=none")
    assert result.returncode == 0, result.stderr
    return tmp_path


def test_every_method_forgets_the_class_at_full_strength_and_keeps_the_others(comparison):
    by_method = {r["choices"]["method"]: r["metrics"] for r in records(comparison)}
    assert sorted(by_method) == APPROXIMATE
    for name, metrics in by_method.items():
        assert metrics["forget/acc"] < 20, name
        assert metrics["forget/acc_before"] > 80, name
        assert metrics["retain/acc"] > metrics["retain/acc_before"] - 20, name  # a wrecked model fails here
        assert metrics["time/unlearn_s"] > 0, name
    for name in ("ccup", "nullspace"):  # the projections leave the other classes within a point
        assert abs(by_method[name]["retain/acc"] - by_method[name]["retain/acc_before"]) < 1, name
    # The closed form costs a fraction of any fine-tuning run.
    assert by_method["ccup"]["time/unlearn_s"] < min(m["time/unlearn_s"] for n, m in by_method.items()
                                                     if n not in ("ccup", "nullspace"))


def test_the_report_shows_every_method_of_the_sweep(comparison):
    subprocess.run([sys.executable, "-m", "ccup.report", str(comparison / "results")], check=True,
                   capture_output=True)
    table = pd.read_csv(comparison / "results" / "report.csv")
    assert sorted(table["method"]) == APPROXIMATE
    assert {"forget/acc", "retain/acc", "time/unlearn_s"} <= set(table.columns)


def test_another_alpha_in_another_process_reuses_the_trained_weights(comparison):
    result = run_suite(comparison, "method=grad_ascent", "alpha=0.5", "eval=[]", "logger=none")
    assert result.returncode == 0, result.stderr
    by_alpha = {r["config"]["alpha"]: r["metrics"] for r in records(comparison)
                if r["choices"]["method"] == "grad_ascent"}
    assert by_alpha[0.5]["unlearn/cache_hit"] == 1
    assert by_alpha[0.5]["time/unlearn_s"] == by_alpha[1.0]["time/unlearn_s"]  # the cost of the one training
    assert by_alpha[1.0]["forget/acc"] < by_alpha[0.5]["forget/acc"] < by_alpha[1.0]["forget/acc_before"]


@pytest.fixture(scope="module")
def oracle(tmp_path_factory, tiny):
    """The oracle beside CCUP on sandal, then the oracle again at alpha = 0.5, and the report of the three. The oracle
    is trained for 50 steps here (the test's reduced recipe; `make paper` trains it by the whole recipe)."""
    tmp_path = tmp_path_factory.mktemp("oracle")
    reduced = ["method=retrain", "method.max_steps=50"]
    for args in (reduced, ["method=ccup"], [*reduced, "alpha=0.5"]):
        result = run_suite(tmp_path, *args, "eval=[cross,probe]", "logger=none")
        assert result.returncode == 0, result.stderr
    subprocess.run([sys.executable, "-m", "ccup.report", str(tmp_path / "results")], check=True, capture_output=True)
    return tmp_path


def by_method_and_alpha(results: Path) -> dict:
    return {(r["choices"]["method"], r["config"]["alpha"]): r["metrics"] for r in records(results)}


def test_the_oracle_never_saw_the_class_and_a_second_run_reads_it_back(oracle):
    runs = by_method_and_alpha(oracle)
    full, half = runs["retrain", 1.0], runs["retrain", 0.5]
    assert full["forget/acc_before"] > 80 and full["forget/acc"] < 20  # no sandal photo in its training
    assert {"retain/acc", "all/acc", "cross/digits/acc", "leak/probe_auroc"} <= set(full)
    assert full["unlearn/cache_hit"] == 0 and half["unlearn/cache_hit"] == 1
    assert half["time/unlearn_s"] == full["time/unlearn_s"]  # the cost of the one training
    assert full["forget/acc"] <= half["forget/acc"] < full["forget/acc_before"]
    assert half["all/acc"] != full["all/acc"]  # halfway between the original weights and the oracle's


def test_the_report_reads_ccup_as_its_gap_to_the_oracle(oracle):
    runs, table = by_method_and_alpha(oracle), pd.read_csv(oracle / "results" / "report.csv")
    assert table["method"].iloc[0] == "retrain"
    ccup = table[table["method"] == "ccup"].iloc[0]
    for metric in ("forget/acc", "retain/acc", "all/acc", "cross/digits/acc", "leak/probe_auroc"):
        assert ccup[f"gap/{metric}"] == pytest.approx(abs(runs["ccup", 1.0][metric] - runs["retrain", 1.0][metric]))
    accuracies = ("forget/acc", "retain/acc", "all/acc", "cross/digits/acc")
    assert ccup["gap/avg"] == pytest.approx(sum(ccup[f"gap/{m}"] for m in accuracies) / 4)


@pytest.fixture(scope="module")
def multi_class(tmp_path_factory, tiny):
    """Forget sets of several classes through run, evaluator and report: footwear, the protocol's three, a random k."""
    tmp_path = tmp_path_factory.mktemp("multi")
    result = run_suite(tmp_path, "-m", "forget=footwear,protocol_all,random_k", "eval=[cross]", "logger=none")
    assert result.returncode == 0, result.stderr
    return tmp_path


def test_several_classes_are_forgotten_together_and_reported_as_one_forget_set(multi_class):
    by_forget = {tuple(r["config"]["forget"]["classes"]): r["metrics"] for r in records(multi_class)}
    data = make_config().dataset
    assert set(by_forget) >= {("sandal", "sneaker", "ankle boot"), tuple(data.protocol_forget)}
    for classes, metrics in by_forget.items():
        assert len(classes) == 3 and set(classes) <= set(data.classnames)
        assert metrics["forget/acc"] < 5 < 80 < metrics["forget/acc_before"]  # all three at once
        assert abs(metrics["retain/acc"] - metrics["retain/acc_before"]) < 5
        before = [metrics[f"class/{name}/acc_before"] for name in classes]
        assert metrics["forget/acc_before"] == pytest.approx(sum(before) / 3)  # 1,000 test images per class
    table = pd.read_csv(multi_class / "results" / "report.csv")
    assert table["forget sets"].tolist() == [len(by_forget)]  # one CCUP setting, averaged over the forget sets
    markdown = (multi_class / "results" / "report.md").read_text()
    assert re.search(r"\| sandal\+sneaker\+ankle boot +\|", markdown)  # its own row in the per-forget-set table


def test_the_protocol_pipeline_runs_end_to_end_on_fixture_datasets_in_their_published_layouts(tmp_path):
    """`experiment=protocol_rn50` with RN50's random weights over the four protocol datasets in miniature (three
    classes each, in CoOp's layouts): Caltech101's first protocol forget class, scored on the other three. (One job:
    every job of both protocol sweeps is composed in test_configs.py.)"""
    for name in SPLIT_LAYOUTS:
        write_split_dataset(tmp_path / "data", name)
    result = run_suite(tmp_path, "-m", "experiment=protocol_rn50", "model.pretrained=null", "dataset=caltech101",
                       "forget=protocol_1", f"data_dir={tmp_path / 'data'}", "logger=none")
    assert result.returncode == 0, result.stderr
    (record,) = records(tmp_path)
    assert record["status"] == "complete" and record["config"]["model"]["name"] == "RN50"
    assert record["config"]["forget"]["classes"] == ["euphonium"]
    crosses = {key.split("/")[1] for key in record["metrics"] if key.startswith("cross/")}
    assert crosses == {"oxford_flowers", "stanford_cars", "stanford_dogs"}  # the other three, never itself
    assert record["metrics"]["forget/acc_before"] in (0.0, 100.0)  # the fixture's one euphonium test image
