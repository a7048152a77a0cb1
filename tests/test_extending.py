"""docs/extending.md followed to the letter: its method and its evaluation, written as the page
gives them into a folder of their own, plug in with no other file touched: the contracts, the sweeps
that take every one, a job, the report."""
import json
import re

import pytest
import torch
from helpers import ROOT, in_process, sweep_jobs
from hydra.utils import instantiate

from ccup import report
from ccup.configs import compose
from ccup.evals import Evaluation
from ccup.method import Method, Projection, build
from ccup.task import UnlearnTask

GUIDE = ROOT / "docs" / "extending.md"


def guide_files() -> dict[str, str]:
    """Every file the guide gives: its path, the line above a code block, and the block."""
    return dict(re.findall(r"^`([^`\s]+)`:\n\n```\w+\n(.*?)^```", GUIDE.read_text(),
                           flags=re.M | re.S))


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The guide's files in a folder of their own, its package importable; the folder."""
    for path, text in guide_files().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def composed(plugin, *overrides: str):
    return compose(f"hydra.searchpath=[file://{plugin}/conf]", *overrides)


def test_the_guide_gives_a_method_an_evaluation_and_their_configs():
    assert sorted(guide_files()) == ["conf/eval/top_k.yaml", "conf/method/orthogonal_forget.yaml",
                                     "my_unlearning/orthogonal.py", "my_unlearning/top_k.py"]


def test_the_sweeps_that_run_every_method_and_every_evaluation_take_them_from_the_folder(plugin):
    assert "orthogonal_forget" in {job["method"]
                                   for job in sweep_jobs("compare", config_dir=plugin / "conf")}
    (evals,) = {job["eval"] for job in sweep_jobs("leakage", config_dir=plugin / "conf")}
    assert "top_k" in evals.strip("[]").split(",")


def test_they_follow_the_written_contracts(plugin, tiny):
    clip, data = tiny, composed(plugin).dataset
    task = UnlearnTask.of(clip, data.classnames, data.templates, ["sandal", "sneaker"],
                          load_train=list)
    method = build(composed(plugin, "method=orthogonal_forget", "alpha=1").method)
    assert isinstance(method, Method) and isinstance(method, Projection) and method.stats == {}
    unlearned = method(clip.model, task)
    weights, before = unlearned.state_dict(), clip.model.state_dict()
    assert ({key for key in weights if not torch.equal(weights[key], before[key])}
            == set(method.edits(clip.model)))
    unchanged = build(composed(plugin, "method=orthogonal_forget",
                               "alpha=0").method)(clip.model, task)
    assert all(torch.equal(value, before[key]) for key, value in unchanged.state_dict().items())
    W = method.unlearning_map(clip.model, task).dense()
    T = task.classifier.double()
    # its own promise
    assert torch.allclose(W @ T[:, task.retain_idx], T[:, task.retain_idx], atol=1e-9)
    # 2 removed
    assert (torch.allclose(W @ W, W, atol=1e-9)
            and torch.linalg.matrix_rank(torch.eye(len(W)) - W) == 2)
    assert isinstance(instantiate(composed(plugin, "eval=[top_k]").evaluator).evals["top_k"],
                      Evaluation)


@pytest.mark.slow
def test_a_job_of_them_reaches_the_record_and_the_report(plugin, tiny, tmp_path):
    results = tmp_path / "results"
    in_process(composed(plugin, "method=orthogonal_forget", "forget=sandal", "debug=default",
                        "eval=[top_k]", f"results_dir={results}", f"hydra.run.dir={tmp_path}/out"))
    metrics = json.loads((tmp_path / "out" / "record.json").read_text())["metrics"]
    # top 3 holds the top 1
    assert metrics["forget/acc_top_k_before"] >= metrics["forget/acc_before"] > 90
    assert metrics["forget/acc_top_k"] >= metrics["forget/acc"] and metrics["forget/acc"] < 50
    report.write_report(results)
    table = (results / "report.md").read_text()
    assert re.search(r"\| orthogonal_forget +\|", table) and "forget/acc_top_k" in table
    assert "forget/acc_top_k" in report.leakage(report.load_records(results)).columns


def test_an_evaluation_config_written_flat_is_refused_in_one_line_before_any_work(plugin, tmp_path):
    # un-nested
    flat = "\n".join(line.strip()
                     for line in guide_files()["conf/eval/top_k.yaml"].splitlines()[2:])
    (plugin / "conf" / "eval" / "flat.yaml").write_text(flat)
    with pytest.raises(SystemExit, match=r"^error: eval: `_target_` is not an evaluation: a "
                                         r"conf/eval/ file nests "):
        in_process(composed(plugin, "eval=[flat]", f"results_dir={tmp_path}/results",
                            f"hydra.run.dir={tmp_path}/out"))
    record = json.loads((tmp_path / "out" / "record.json").read_text())
    assert record["status"] == "failed" and "metrics" not in record


def test_an_evaluation_without_its_columns_is_refused_by_name(plugin):
    (plugin / "conf" / "eval" / "bare.yaml").write_text("bare:\n  _target_: collections.Counter\n")
    with pytest.raises(Exception, match=r"eval.bare \(Counter\) is not an evaluation: it needs "
                                        r"`columns` and "):
        instantiate(composed(plugin, "eval=[bare]").evaluator)
