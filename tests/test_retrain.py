"""The oracle, method=retrain: the embedded model's recipe trained again without the forget classes, once."""
import pytest
import torch
from helpers import make_config
from hydra.utils import instantiate

import ccup.tiny
from ccup.errors import find_user_error
from ccup.models import load_clip
from ccup.task import UnlearnTask


def retrain(cache_dir, *overrides):
    """The oracle on a few steps of the recipe (the full recipe takes minutes; what is tested holds for any length)."""
    return instantiate(make_config("method=retrain", "method.max_steps=3", f"cache_dir={cache_dir}", *overrides).method)


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    clip = load_clip("ccup-tiny-p7")
    data = make_config().dataset
    return clip, UnlearnTask.of(clip, data.classnames, data.templates, ["sandal"])


def test_the_oracle_is_trained_once_per_forget_set_and_then_read_back(setup, tmp_path, monkeypatch):
    clip, task = setup
    first = retrain(tmp_path)
    oracle = first(clip.model, task)
    assert first.stats["unlearn/cache_hit"] == 0 and first.stats["time/unlearn_s"] > 0
    monkeypatch.setattr(ccup.tiny, "CaptionContrast", None)  # a cache hit must not train
    again, half = retrain(tmp_path), retrain(tmp_path, "alpha=0.5")
    assert torch.equal(again(clip.model, task).visual.proj, oracle.visual.proj)
    assert again.stats == {**first.stats, "unlearn/cache_hit": 1}  # the cost reported is the training's
    midpoint = torch.lerp(clip.model.visual.proj, oracle.visual.proj, 0.5)
    torch.testing.assert_close(half(clip.model, task).visual.proj, midpoint)
    other = UnlearnTask.of(clip, task.classnames, task.templates, ["bag"])
    with pytest.raises(Exception, match="'NoneType' object is not callable"):  # another forget set: it trains
        retrain(tmp_path)(clip.model, other)


@pytest.mark.parametrize("overrides, message", [
    (["model=vit_b32_openai"], "'ViT-B-32' (openai) comes with pretrained weights whose training data and recipe the "
                               "suite does not have: retrain the embedded model (model=tiny) instead"),
    (["model=vit_b32_openai", "model.pretrained=/my/weights.pt"], "'ViT-B-32' (/my/weights.pt) comes with pretrained"),
    (["method.max_steps=0"], "method.max_steps must be at least 1"),
])
def test_only_a_model_the_suite_trained_can_be_retrained(overrides, message):
    with pytest.raises(Exception) as error:  # Hydra wraps what a constructor raises
        instantiate(make_config("method=retrain", *overrides).method)
    assert message in str(find_user_error(error.value))
