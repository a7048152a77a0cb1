"""Contract tests, run over every method in conf/method/: `method(model, task)` returns the unlearned model."""
import pytest
import torch
from conftest import config_names, make_config
from hydra.utils import instantiate
from torch.utils.data import Subset

from ccup.data import fashion_mnist
from ccup.models import load_clip
from ccup.task import UnlearnTask

METHODS = config_names("method")


@pytest.fixture(scope="module")
def setup():
    """A random-weight tiny model (the contract does not need trained weights) and a task on its classes, with 512
    training images for the methods that fine-tune."""
    torch.manual_seed(0)
    clip = load_clip("ccup-tiny-p7")
    data = make_config().dataset
    train = Subset(fashion_mnist("train", data.load.roots, data.load.cache_dir, clip.preprocess), range(512))
    return clip, UnlearnTask.of(clip, data.classnames, data.templates, ["sandal"], train=lambda: train)


def method(name: str, alpha: float, cache_dir):
    """The method as configured, with fine-tuning cut to a few steps (the contract holds for any length)."""
    overrides = [f"method={name}", f"alpha={alpha}", f"cache_dir={cache_dir}"]
    if "steps" in make_config(*overrides).method:
        overrides.append("method.steps=3")
    return instantiate(make_config(*overrides).method)


def unlearn(name: str, alpha: float, setup, cache_dir) -> torch.nn.Module:
    clip, task = setup
    return method(name, alpha, cache_dir)(clip.model, task)


def differing(a: torch.nn.Module, b: torch.nn.Module) -> set[str]:
    return {key for key, value in a.state_dict().items() if not torch.equal(value, b.state_dict()[key])}


@pytest.mark.parametrize("name", METHODS)
def test_alpha_zero_leaves_every_weight_bit_identical(name, setup, tmp_path):
    assert differing(unlearn(name, 0.0, setup, tmp_path), setup[0].model) == set()


@pytest.mark.parametrize("name", METHODS)
def test_same_seed_gives_bit_identical_weights(name, setup, tmp_path):
    # Two cache folders: both runs compute the weights, neither reads the other's.
    assert differing(unlearn(name, 1.0, setup, tmp_path / "a"), unlearn(name, 1.0, setup, tmp_path / "b")) == set()


@pytest.mark.parametrize("name", METHODS)
def test_method_changes_only_the_parameters_it_declares(name, setup, tmp_path):
    clip, _ = setup
    changed = differing(unlearn(name, 1.0, setup, tmp_path), clip.model)
    assert changed and changed <= set(method(name, 1.0, tmp_path).edits(clip.model))


@pytest.mark.parametrize("name", METHODS)
def test_the_given_model_is_not_mutated(name, setup, tmp_path):
    clip, _ = setup
    before = {key: value.clone() for key, value in clip.model.state_dict().items()}
    unlearn(name, 1.0, setup, tmp_path)
    assert all(torch.equal(value, clip.model.state_dict()[key]) for key, value in before.items())
