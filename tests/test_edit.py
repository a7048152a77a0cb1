"""The methods that edit weights (fine-tuning baselines, SSD, SLUG): their fully unlearned weights
computed once per setting, under keys that stay as they were, and interpolated for every alpha."""
import pytest
import torch
from helpers import compose
from hydra.utils import instantiate

from baselines.edit import WeightEdit
from ccup.errors import UserError
from ccup.method import build
from ccup.task import UnlearnTask

# key() of each method's config on the shipped tiny model, forgetting digit 3 with digits' train
# split, as the code computed them before the methods shared a base (the fine-tuning baselines'
# since the shared loop, part of their key, became ccup.loop.UnlearningModule): users' caches of
# unlearned weights are named by these, and a refactoring must leave them as they are (a changed
# setting changes them, and must).
KEYS = {
    ("finetune", "real"): "bd4bcdcbef531b823d5a",
    ("finetune", "synthetic"): "b654f325cd51654d37bb",
    ("grad_ascent", "real"): "4512a25704b9e0471ede",
    ("grad_ascent", "synthetic"): "65e6bd95f7cfdd665bfd",
    ("neggrad_plus", "real"): "5886c82083f90aae7000",
    ("random_label", "real"): "1d865903cb7f9f7d7246",
    ("salun", "real"): "d23bb3a173f34aa9ffda",
    ("scrub", "real"): "66d4982f66d5b77884e5",
    ("lipschitz", "real"): "7d8e00ea5823a4cb7cb7",
    ("lipschitz", "synthetic"): "070b4026bc20c060ccf0",
    ("ssd", "real"): "02ad5b4057d2602e6d48",
    ("ssd", "synthetic"): "61e7fe20f9414a76ac95",
    ("slug", "real"): "6f3bbc070bfb433610b1",
    ("slug", "synthetic"): "7a4589a1966a04c226f4",
}


@pytest.fixture(scope="module")
def digits_task(tiny):
    data = instantiate(compose("dataset=digits").dataset)
    train = data.load(split="train", transform=tiny.preprocess)
    return UnlearnTask.of(tiny, data.classnames, data.templates, ["3"], load_train=lambda: train)


@pytest.mark.parametrize("name, samples", list(KEYS))
def test_the_cache_keys_of_the_unlearned_weights_stay_as_they_were(name, samples, tiny,
                                                                   digits_task):
    method = build(compose(f"method={name}", f"samples={samples}", "dataset=digits").method)
    assert method.key(tiny.model, digits_task) == KEYS[name, samples]


class Halving(WeightEdit):
    """Halves the image tower's final projection: theta_1 = theta_0 / 2, so theta_alpha =
    theta_0 (1 - alpha / 2)."""

    def __init__(self, alpha: float, cache_dir: str):
        super().__init__(alpha, cache_dir)
        self.computed = 0

    def edits(self, model):
        return ["visual.proj"]

    def compute(self, model, task):
        self.computed += 1
        return {"weights": {"visual.proj": model.visual.proj.detach() / 2},
                "stats": {"time/unlearn_s": 2.5}}

    def settings(self):
        return {"method": "halving"}


def test_the_unlearned_weights_are_computed_once_and_interpolated_for_every_alpha(
        tiny, digits_task, tmp_path):
    proj = tiny.model.visual.proj.detach()
    first = Halving(1.0, tmp_path)
    assert torch.equal(first(tiny.model, digits_task).visual.proj, proj / 2)
    assert first.computed == 1 and first.stats == {"time/unlearn_s": 2.5, "unlearn/cache_hit": 0}
    for alpha in (0.0, 0.25):
        method = Halving(alpha, tmp_path)
        edited = method(tiny.model, digits_task)
        assert method.computed == 0
        assert method.stats == {"time/unlearn_s": 2.5, "unlearn/cache_hit": 1}
        torch.testing.assert_close(edited.visual.proj, proj * (1 - alpha / 2))
    unchanged = Halving(0.0, tmp_path)(tiny.model, digits_task)
    assert torch.equal(unchanged.visual.proj, proj)  # alpha = 0: bit for bit
    assert torch.equal(tiny.model.visual.proj, proj)  # the given model is left as it was
    with pytest.raises(UserError, match="alpha must lie in"):
        Halving(1.5, tmp_path)
