"""Our before-forgetting numbers against the published ones (results/reference/), where weights and
data are here. Missing weights or data skip a case; CCUP_REQUIRE_REFERENCE=1 makes them fail it, on
machines that should have them."""
import os

import pandas as pd
import pytest
from helpers import ROOT, compose
from hydra.utils import instantiate

from ccup.errors import MissingFiles, UserError, find_user_error
from ccup.metrics import class_counts, unlearning_metrics
from ccup.zeroshot import class_embeddings, predict

REFERENCE = pd.read_csv(ROOT / "results" / "reference" / "protocol_before.csv")
TOLERANCE = 0.2  # points


def available(build, what: str):
    """`build()`, or a skip that says which files are missing and where they go. Any other error, a
    typo in a config included, fails."""
    try:
        return build()
    except Exception as exc:
        if (not isinstance(error := find_user_error(exc), MissingFiles)
                or os.environ.get("CCUP_REQUIRE_REFERENCE")):
            raise
        pytest.skip(f"{what} not available here: {error}")


@pytest.mark.slow
@pytest.mark.parametrize("model, dataset",
                         sorted(set(zip(REFERENCE.model, REFERENCE.dataset, strict=True))))
def test_before_forgetting_numbers_match_the_published_ones(model, dataset):
    cfg = compose(f"model={model}", f"dataset={dataset}", "eval=[]")
    data = instantiate(cfg.dataset)
    # data first: it fails fast
    available(lambda: data.load(split=data.split), f"the {dataset} test split")
    clip = available(lambda: instantiate(cfg.model), f"the {model} weights")
    test_set = data.load(split=data.split, transform=clip.preprocess)
    features, labels = instantiate(cfg.evaluator).features(clip.model, test_set, cached=True)
    classifier = class_embeddings(clip.model, clip.tokenizer, data.classnames, data.templates)
    counts = class_counts(predict(clip.model, features, classifier), labels, len(data.classnames))
    expected = REFERENCE[(REFERENCE.model == model) & (REFERENCE.dataset == dataset)]
    ours = [unlearning_metrics(*counts, [list(data.classnames).index(name)], data.classnames)
            for name in expected.forget_class]
    assert ours[0]["all/acc"] == pytest.approx(expected.all_acc.iloc[0], abs=TOLERANCE)
    assert [m["forget/acc"] for m in ours] == pytest.approx(list(expected.forget_acc),
                                                            abs=TOLERANCE)
    retain = sum(m["retain/acc"] for m in ours) / len(ours)
    assert retain == pytest.approx(expected.retain_acc.iloc[0], abs=TOLERANCE)


def test_the_reference_covers_the_protocol():
    """Every protocol preset has its published numbers, class names as our dataset configs spell
    them."""
    for (model, dataset), rows in REFERENCE.groupby(["model", "dataset"]):
        cfg = compose(f"model={model}", f"dataset={dataset}")
        assert list(rows.forget_class) == list(cfg.dataset.protocol_forget)
        assert rows.all_acc.nunique() == rows.retain_acc.nunique() == 1
    assert len(REFERENCE) == 2 * 4 * 3


def fail(error: Exception):
    raise error


def test_only_missing_files_skip_and_a_required_reference_fails_on_them(monkeypatch):
    with pytest.raises(UserError, match="unknown"):  # a typo in a config is an error, never a skip
        available(lambda: fail(UserError("unknown open_clip model 'ViT-B-61'")), "the weights")
    with pytest.raises(pytest.skip.Exception, match="the weights not available here: could not "
                                                    "download"):
        available(lambda: fail(MissingFiles("could not download")), "the weights")
    monkeypatch.setenv("CCUP_REQUIRE_REFERENCE", "1")
    with pytest.raises(MissingFiles):
        available(lambda: fail(MissingFiles("could not download")), "the weights")
