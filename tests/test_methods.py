"""Contract tests, run over every method in conf/method/ on an open_clip and a transformers CLIP
model: `method(model, task)` returns the unlearned model."""
import pytest
import torch
from helpers import compose, config_names, fashion_task

from ccup.errors import find_user_error
from ccup.heads import fold_projection
from ccup.method import CCUP, Method, Projection, build
from ccup.projection import ccup_factors, ccup_map

METHODS = config_names("method")
# What cannot apply to a model refuses it (test_what_cannot_apply_refuses_by_name): the oracle
# retrains by the recipe the suite trained the model with, and a transformers model has none.
REFUSED = {"hf": ["retrain", "retrain_reseeded", "retrain_unnamed"]}
CASES = [(model, name) for model in ("open_clip", "hf") for name in METHODS
         if name not in REFUSED.get(model, [])]


@pytest.fixture(scope="module")
def setup(request):
    """A random-weight model (the contract does not need trained weights), the embedded model's
    architecture or a transformers CLIPModel (request.param: "open_clip", the default, or "hf"), and
    a task on Fashion-MNIST's classes, with 512 training images for the methods that fine-tune."""
    hf = getattr(request, "param", "open_clip") == "hf"
    clip = request.getfixturevalue("random_hf" if hf else "random_tiny")
    return clip, fashion_task(clip)


def method(name: str, alpha: float, cache_dir):
    """The method as configured, with fine-tuning and retraining cut to a few steps (the contract
    holds for any length)."""
    # one config per method, given each alpha and cache as the command line would
    cfg = compose(f"method={name}")
    cfg.alpha = alpha
    cfg.cache_dir = str(cache_dir)
    for key in ("steps", "max_steps"):
        if key in cfg.method:
            cfg.method[key] = 3
    return build(cfg.method)


def unlearn(name: str, alpha: float, setup, cache_dir) -> torch.nn.Module:
    clip, task = setup
    return method(name, alpha, cache_dir)(clip.model, task)


def differing(a: torch.nn.Module, b: torch.nn.Module) -> set[str]:
    return {key for key, value in a.state_dict().items()
            if not torch.equal(value, b.state_dict()[key])}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache of trained weights for the tests that need not train anew: each setting trains
    once."""
    return tmp_path_factory.mktemp("cache")


@pytest.mark.parametrize("setup, name", CASES, indirect=["setup"])
def test_every_method_follows_the_written_contract(name, setup, cache):
    built = method(name, 1.0, cache)
    # stats: filled by a call
    assert isinstance(built, Method) and built.alpha == 1.0 and built.stats == {}
    built(setup[0].model, setup[1])
    assert all(key.startswith(("unlearn/", "samples/", "time/"))
               for key in built.stats), built.stats


def test_the_projections_are_the_methods_that_say_so():
    projections = {name for name in METHODS
                   if isinstance(build(compose(f"method={name}").method), Projection)}
    assert projections == {"ccup", "nullspace", "leace"}


@pytest.mark.parametrize("setup, name", CASES, indirect=["setup"])
def test_alpha_zero_leaves_every_weight_bit_identical(name, setup, cache):
    assert differing(unlearn(name, 0.0, setup, cache), setup[0].model) == set()


@pytest.mark.parametrize("setup, name", CASES, indirect=["setup"])
def test_same_seed_gives_bit_identical_weights(name, setup, cache, tmp_path):
    # The module's cache holds the weights the contract test computed (or computes them now); a
    # fresh cache folder computes them again, so the two results come from two runs.
    assert differing(unlearn(name, 1.0, setup, cache), unlearn(name, 1.0, setup, tmp_path)) == set()


@pytest.mark.parametrize("setup, name", CASES, indirect=["setup"])
def test_method_changes_only_the_parameters_it_declares(name, setup, cache):
    clip, _ = setup
    changed = differing(unlearn(name, 1.0, setup, cache), clip.model)
    declared = method(name, 1.0, cache).edits(clip.model)
    # the blocklist declares and edits none
    assert changed <= set(declared) and bool(changed) == bool(declared)


@pytest.mark.parametrize("setup, name", CASES, indirect=["setup"])
def test_the_given_model_is_not_mutated(name, setup, cache):
    clip, _ = setup
    before = {key: value.clone() for key, value in clip.model.state_dict().items()}
    unlearn(name, 1.0, setup, cache)
    assert all(torch.equal(value, clip.model.state_dict()[key]) for key, value in before.items())


def test_ccup_folds_the_closed_form_of_its_own_lam_mu_and_classes(setup):
    clip, task = setup
    T = task.classifier  # (d, C)
    forget, retain = (T[:, [task.classnames.index("sandal")]],
                      T[:, [c != "sandal" for c in task.classnames]])
    folded = {}
    for lam, mu, alpha in [(10.0, 0.0, 1.0), (1000.0, 5.0, 0.5)]:
        expected = fold_projection(clip.model,
                                   ccup_factors(forget, retain, lam, mu).with_strength(alpha))
        folded[lam] = CCUP(alpha=alpha, lam=lam, mu=mu)(clip.model, task).visual.proj
        torch.testing.assert_close(folded[lam], expected.visual.proj, rtol=0, atol=0)
        # W_alpha = I - alpha (I - W*), a (d, d) matrix
        W_alpha = torch.eye(128, dtype=torch.float64) - alpha * (
            torch.eye(128, dtype=torch.float64) - ccup_map(forget, retain, lam, mu))
        dense = fold_projection(clip.model, W_alpha)
        torch.testing.assert_close(folded[lam], dense.visual.proj, rtol=1e-5, atol=1e-6)
    # the two settings are told apart
    assert not torch.allclose(folded[10.0], folded[1000.0], atol=1e-4)


def test_a_second_oracle_trains_under_its_own_seed(setup, cache):
    first, second = (unlearn(name, 1.0, setup, cache) for name in ("retrain", "retrain_reseeded"))
    # every weight: another training, not a copy
    assert differing(first, second) == set(first.state_dict())


@pytest.mark.parametrize("name", REFUSED["hf"])
def test_what_cannot_apply_refuses_by_name(name, hf_folder):
    with pytest.raises(Exception) as error:  # Hydra wraps what a constructor raises
        build(compose(f"method={name}", "model=hf", f"model.name={hf_folder}").method)
    assert str(find_user_error(error.value)) == (
        f"method=retrain trains the model again from its recipe, but '{hf_folder}' comes with "
        "pretrained weights whose training data and recipe the suite does not have: retrain the "
        "embedded model (model=tiny) instead")
