"""Config tests: every option of every group composes, sweep axes reach the methods, presets name real classes."""
import pytest
from conftest import config_names, make_config
from hydra.utils import instantiate
from omegaconf import OmegaConf

GROUPS = ["model", "dataset", "forget", "method", "logger"]


@pytest.mark.parametrize("group, option", [(g, o) for g in GROUPS for o in config_names(g)])
def test_every_option_composes_and_resolves(group, option):
    cfg = make_config(f"{group}={option}")
    config = OmegaConf.to_container(cfg, resolve=True)
    assert config["alpha"] == 1.0 and config["seed"] == 0


@pytest.mark.parametrize("method", config_names("method"))
@pytest.mark.parametrize("alpha", [0, 0.5, 1])
def test_alpha_reaches_every_method(method, alpha):
    assert instantiate(make_config(f"method={method}", f"alpha={alpha}").method).alpha == alpha


@pytest.mark.parametrize("forget", config_names("forget"))
def test_every_forget_preset_names_classes_of_a_dataset(forget):
    classes = set(make_config(f"forget={forget}").forget.classes)
    assert classes, f"forget preset {forget} is empty"
    assert any(classes <= set(make_config(f"dataset={d}").dataset.classnames) for d in config_names("dataset"))


def test_nullspace_is_ccup_without_retention_and_with_a_hard_constraint():
    method = instantiate(make_config("method=nullspace").method)
    assert (method.lam, method.mu) == (float("inf"), 0.0)
