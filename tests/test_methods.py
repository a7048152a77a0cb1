"""Contract tests, run over every method in conf/method/: `method(model, task)` returns the unlearned model."""
import pytest
import torch
from conftest import config_names, make_config
from hydra.utils import instantiate

from ccup.models import load_clip
from ccup.task import UnlearnTask


@pytest.fixture(scope="module")
def setup():
    """A random-weight tiny model (the contract does not need trained weights) and a task on its classes."""
    torch.manual_seed(0)
    clip = load_clip("ccup-tiny-p7")
    data = make_config().dataset
    return clip, UnlearnTask.of(clip, data.classnames, data.templates, ["sandal"])


def unlearn(name: str, alpha: float, setup) -> torch.nn.Module:
    clip, task = setup
    cfg = make_config(f"method={name}", f"alpha={alpha}")
    torch.manual_seed(cfg.seed)
    return instantiate(cfg.method)(clip.model, task)


def differing(a: torch.nn.Module, b: torch.nn.Module) -> set[str]:
    return {key for key, value in a.state_dict().items() if not torch.equal(value, b.state_dict()[key])}


@pytest.mark.parametrize("name", config_names("method"))
def test_alpha_zero_leaves_every_weight_bit_identical(name, setup):
    assert differing(unlearn(name, 0.0, setup), setup[0].model) == set()


@pytest.mark.parametrize("name", config_names("method"))
def test_same_seed_gives_bit_identical_weights(name, setup):
    assert differing(unlearn(name, 1.0, setup), unlearn(name, 1.0, setup)) == set()


@pytest.mark.parametrize("name", config_names("method"))
def test_method_changes_only_the_parameters_it_declares(name, setup):
    clip, _ = setup
    method = instantiate(make_config(f"method={name}").method)
    changed = differing(unlearn(name, 1.0, setup), clip.model)
    assert changed and changed <= set(method.edits(clip.model))


@pytest.mark.parametrize("name", config_names("method"))
def test_the_given_model_is_not_mutated(name, setup):
    clip, _ = setup
    before = {key: value.clone() for key, value in clip.model.state_dict().items()}
    unlearn(name, 1.0, setup)
    assert all(torch.equal(value, clip.model.state_dict()[key]) for key, value in before.items())
