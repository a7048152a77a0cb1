"""The oracle, method=retrain: the embedded model's recipe trained again without the forget classes,
once."""
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import compose, records, run_job
from hydra.utils import instantiate

import ccup.tiny
from ccup.errors import find_user_error
from ccup.method import build
from ccup.models import load_clip
from ccup.report import write_report
from ccup.task import UnlearnTask


def retrain(cache_dir, *overrides):
    """The oracle on a few steps of the recipe (the full recipe takes minutes; what is tested holds
    for any length)."""
    return build(compose("method=retrain", "method.max_steps=3", f"cache_dir={cache_dir}",
                         *overrides).method)


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    clip = load_clip("ccup-tiny-p7")
    data = compose().dataset
    return clip, UnlearnTask.of(clip, data.classnames, data.templates, ["sandal"])


def test_the_oracle_is_trained_once_per_forget_set_and_then_read_back(setup, tmp_path, monkeypatch):
    clip, task = setup
    first = retrain(tmp_path)
    oracle = first(clip.model, task)
    assert first.stats["unlearn/cache_hit"] == 0 and first.stats["time/unlearn_s"] > 0
    # a cache hit must not even gather the training images
    monkeypatch.setattr(ccup.tiny, "training_set", None)
    again, half = retrain(tmp_path), retrain(tmp_path, "alpha=0.5")
    assert torch.equal(again(clip.model, task).visual.proj, oracle.visual.proj)
    # the cost reported is the training's
    assert again.stats == {**first.stats, "unlearn/cache_hit": 1}
    midpoint = torch.lerp(clip.model.visual.proj, oracle.visual.proj, 0.5)
    torch.testing.assert_close(half(clip.model, task).visual.proj, midpoint)
    other = UnlearnTask.of(clip, task.classnames, task.templates, ["bag"])
    # another forget set: it trains
    with pytest.raises(Exception, match="'NoneType' object is not callable"):
        retrain(tmp_path)(clip.model, other)


def test_the_unnamed_oracle_trains_without_the_forget_names_and_is_cached_apart(setup, tmp_path):
    clip, task = setup
    named = retrain(tmp_path)(clip.model, task)
    method = build(compose("method=retrain_unnamed", "method.max_steps=3",
                           f"cache_dir={tmp_path}").method)
    unnamed = method(clip.model, task)
    assert method.stats["unlearn/cache_hit"] == 0  # another recipe, another entry
    assert not torch.equal(named.visual.proj, unnamed.visual.proj)
    with pytest.raises(Exception) as error:  # Hydra wraps what the loader raises
        instantiate(compose().model, exclude=["sandal"], unnamed=["bag"])
    assert "cannot leave the names of ['bag'] out" in str(find_user_error(error.value))


@pytest.mark.parametrize("overrides, message", [
    (["model=vit_b32_openai"], "'ViT-B-32' (openai) comes with pretrained weights whose training "
                               "data and recipe the suite does not have: retrain the embedded "
                               "model (model=tiny) instead"),
    (["model=vit_b32_openai", "model.pretrained=/my/weights.pt"],
     "'ViT-B-32' (/my/weights.pt) comes with pretrained"),
    (["method.max_steps=0"], "method.max_steps must be at least 1"),
])
def test_only_a_model_the_suite_trained_can_be_retrained(overrides, message):
    with pytest.raises(Exception) as error:  # Hydra wraps what a constructor raises
        build(compose("method=retrain", *overrides).method)
    assert message in str(find_user_error(error.value))


# --- end to end: the oracle beside CCUP, and the report's gaps ------------------------------------

@pytest.fixture(scope="module")
def oracle(tmp_path_factory, tiny):
    """The oracle and CCUP on sandal, one job after another in this process, and the report of the
    two. The oracle is trained for 10 steps here (the test's reduced recipe; `make paper` trains it
    by the whole recipe). Another alpha reading the training back is tested above, and for every
    trained method by test_compare.py."""
    tmp_path = tmp_path_factory.mktemp("oracle")
    jobs = {"oracle": ["method=retrain", "method.max_steps=10"], "ccup": ["method=ccup"]}
    for folder, job in jobs.items():
        run_job(tmp_path, *job, "eval=[cross,probe]", "logger=none", debug=False, folder=folder)
    write_report(tmp_path / "results")
    return tmp_path


def by_method_and_alpha(results: Path) -> dict:
    return {(r["choices"]["method"], r["config"]["alpha"]): r["metrics"] for r in records(results)}


@pytest.mark.slow
def test_the_oracle_never_saw_the_class_and_every_evaluation_scores_it(oracle):
    full = by_method_and_alpha(oracle)["retrain", 1.0]
    # no sandal photo in its training
    assert full["forget/acc_before"] > 80 and full["forget/acc"] < 20
    assert {"retain/acc", "all/acc", "cross/digits/acc", "leak/probe_auroc"} <= set(full)
    assert full["unlearn/cache_hit"] == 0 and full["time/unlearn_s"] > 0


@pytest.mark.slow
def test_the_report_reads_ccup_as_its_gap_to_the_oracle(oracle):
    runs, table = by_method_and_alpha(oracle), pd.read_csv(oracle / "results" / "report.csv")
    assert table["method"].iloc[0] == "retrain"
    ccup = table[table["method"] == "ccup"].iloc[0]
    for metric in ("forget/acc", "retain/acc", "all/acc", "cross/digits/acc", "leak/probe_auroc"):
        assert ccup[f"gap/{metric}"] == pytest.approx(abs(runs["ccup", 1.0][metric]
                                                          - runs["retrain", 1.0][metric]))
    # each once: all/acc would count retain twice
    accuracies = ("forget/acc", "retain/acc", "cross/digits/acc")
    assert ccup["gap/forget_retain_cross"] == pytest.approx(
        sum(ccup[f"gap/{m}"] for m in accuracies) / 3)
