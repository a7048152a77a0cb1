"""The methods that edit weights (fine-tuning baselines, SSD, SLUG): the cache keys of their fully unlearned weights."""
import pytest
from helpers import compose
from hydra.utils import instantiate

from ccup.method import build
from ccup.task import UnlearnTask

# key() of each method's config on the shipped tiny model, forgetting digit 3 with digits' train split, as the code
# computed them before the methods shared a base: users' caches of unlearned weights are named by these, and a
# refactoring must leave them as they are (a changed setting changes them, and must).
KEYS = {
    ("finetune", "real"): "da61dc95d449cf273117",
    ("finetune", "synthetic"): "36fc2ffb848b04afaa3a",
    ("grad_ascent", "real"): "a8c0868f959cf28fc925",
    ("grad_ascent", "synthetic"): "862a2d7c61436d701743",
    ("neggrad_plus", "real"): "85754013d82c04084e37",
    ("random_label", "real"): "2c7cbdd1a39e81c42db8",
    ("salun", "real"): "668d83c1b500d9fa7ec7",
    ("scrub", "real"): "7309c3ce359e82bc59cf",
    ("lipschitz", "real"): "7d8e00ea5823a4cb7cb7",
    ("lipschitz", "synthetic"): "070b4026bc20c060ccf0",
    ("ssd", "real"): "11f0a11fb1caf2309068",
    ("ssd", "synthetic"): "36dd1b06e818bef1c6f2",
    ("slug", "real"): "6f3bbc070bfb433610b1",
    ("slug", "synthetic"): "7a4589a1966a04c226f4",
}


@pytest.fixture(scope="module")
def digits_task(tiny):
    data = instantiate(compose("dataset=digits").dataset)
    train = data.load(split="train", transform=tiny.preprocess)
    return UnlearnTask.of(tiny, data.classnames, data.templates, ["3"], load_train=lambda: train)


@pytest.mark.parametrize("name, samples", list(KEYS))
def test_the_cache_keys_of_the_unlearned_weights_stay_as_they_were(name, samples, tiny, digits_task):
    method = build(compose(f"method={name}", f"samples={samples}", "dataset=digits").method)
    assert method.key(tiny.model, digits_task) == KEYS[name, samples]
