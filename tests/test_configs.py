"""Config tests: every option of every group composes, sweep axes reach the methods, presets name real classes."""
import pytest
from helpers import CONF, config_names, make_config, sweep_jobs
from hydra.errors import CompactHydraException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ccup.errors import composition_error

DATASETS = {name: make_config(f"dataset={name}").dataset for name in config_names("dataset")}  # composed once
GROUPS = ["model", "dataset", "prompts", "forget", "method", "logger", "eval"]


SETTINGS = {"prompts=file": [f"dataset.templates_file={CONF}/prompts/example.txt"]}  # options that need a value


@pytest.mark.parametrize("group, option", [(g, o) for g in GROUPS for o in config_names(g)])
def test_every_option_composes_and_resolves(group, option):
    cfg = make_config(f"{group}={option}", *SETTINGS.get(f"{group}={option}", []))
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
    assert any(classes <= set(DATASETS[d].classnames) for d in DATASETS)


def test_nullspace_is_ccup_without_retention_and_with_a_hard_constraint():
    method = instantiate(make_config("method=nullspace").method)
    assert (method.lam, method.mu) == (float("inf"), 0.0)


PROTOCOL_DATASETS = [d for d in DATASETS if "protocol_forget" in DATASETS[d]]


def test_the_protocol_datasets_have_their_published_forget_classes():
    assert {"caltech101", "oxford_flowers", "stanford_cars", "stanford_dogs"} <= set(PROTOCOL_DATASETS)


@pytest.mark.parametrize("dataset", PROTOCOL_DATASETS)
def test_protocol_presets_pick_the_datasets_classes_alone_and_together(dataset):
    data = make_config(f"dataset={dataset}").dataset
    protocol = list(data.protocol_forget)
    assert len(protocol) == len(set(protocol)) == 3 and set(protocol) <= set(data.classnames)
    singles = [list(make_config(f"dataset={dataset}", f"forget=protocol_{i}").forget.classes) for i in (1, 2, 3)]
    assert singles == [[name] for name in protocol]
    assert list(make_config(f"dataset={dataset}", "forget=protocol_all").forget.classes) == protocol


@pytest.mark.parametrize("k, draw", [(1, 0), (3, 0), (3, 1), (9, 7)])
def test_random_k_draws_k_distinct_classes_the_same_way_for_a_draw(k, draw):
    overrides = ["forget=random_k", f"forget.k={k}", f"forget.draw={draw}"]
    classes = list(make_config(*overrides).forget.classes)
    assert len(classes) == len(set(classes)) == k
    assert set(classes) <= set(make_config().dataset.classnames)
    assert classes == list(make_config(*overrides).forget.classes)


def test_random_k_draws_differ_and_refuse_impossible_sizes():
    draws = {tuple(make_config("forget=random_k", f"forget.draw={d}").forget.classes) for d in range(5)}
    assert len(draws) > 1
    for k in (0, 10):
        with pytest.raises(Exception, match=f"forget.k={k}: draw between 1 and 9"):
            list(make_config("forget=random_k", f"forget.k={k}").forget.classes)


def test_prompt_presets_replace_the_datasets_templates_only(tmp_path):
    openai = make_config("prompts=openai_imagenet")
    assert len(openai.dataset.templates) == 80 and openai.dataset.templates[0] == "a bad photo of a {}."
    assert list(openai.model.train_data.fashion_mnist.templates) == list(make_config().dataset.templates)
    assert len(make_config("prompts=simple_imagenet").dataset.templates) == 7
    (tmp_path / "mine.txt").write_text("# my prompts\na sketch of a {}.\n\nan x-ray of a {}.\n")
    mine = make_config("prompts=file", f"dataset.templates_file={tmp_path / 'mine.txt'}")
    assert list(mine.dataset.templates) == ["a sketch of a {}.", "an x-ray of a {}."]
    (tmp_path / "bad.txt").write_text("a sketch\n")
    with pytest.raises(Exception, match="each with {} where the class name goes"):
        list(make_config("prompts=file", f"dataset.templates_file={tmp_path / 'bad.txt'}").dataset.templates)
    with pytest.raises(Exception, match="no template file at .*pass prompts=file dataset.templates_file=PATH"):
        list(make_config("prompts=file", "dataset.templates_file=nope.txt").dataset.templates)


def test_cross_dataset_presets_name_real_datasets_and_skip_the_unlearned_one():
    cfg = make_config()
    assert list(cfg.eval.cross.datasets) == ["fashion_mnist", "digits"]
    cross = instantiate(cfg.evaluator).evals["cross"]
    assert list(cross.datasets) == ["digits"]  # fashion_mnist is the one being unlearned
    protocol = make_config("eval=[cross_protocol]", "dataset=caltech101").eval.cross.datasets
    assert list(protocol) == ["caltech101", "oxford_flowers", "stanford_cars", "stanford_dogs"]
    assert make_config("eval=[]").evaluator.evals == {}


@pytest.mark.parametrize("experiment, model", [("protocol_rn50", "RN50"), ("protocol_vit_b16", "ViT-B-16")])
def test_protocol_experiments_compose_every_job_of_their_sweep(experiment, model):
    params = OmegaConf.load(CONF / "experiment" / f"{experiment}.yaml").hydra.sweeper.params
    for dataset in params.dataset.split(","):
        for forget in params.forget.split(","):
            cfg = make_config(f"experiment={experiment}", f"dataset={dataset}", f"forget={forget}")
            assert (cfg.model.name, cfg.model.pretrained) == (model, "openai")
            assert set(cfg.forget.classes) <= set(cfg.dataset.classnames)
            assert len(cfg.forget.classes) == (3 if forget == "protocol_all" else 1)
            cross = instantiate(cfg.eval.cross)
            assert sorted(cross.datasets) == sorted(set(params.dataset.split(",")) - {dataset})


@pytest.mark.parametrize("experiment", ["compare", "benchmark", "leakage"])
def test_comparisons_sweep_every_method_of_the_registry_the_oracle_included(experiment):
    methods = sorted({job["method"] for job in sweep_jobs(experiment)})
    assert methods == config_names("method") and "retrain" in methods


@pytest.mark.parametrize("overrides, line", [
    (["method=ccupp"], "error: method=ccupp: no such option; did you mean 'ccup'? method has "
                       + ", ".join(config_names("method"))),
    (["hydra/launcher=nosuch"], "error: hydra/launcher=nosuch: no such option; hydra/launcher has basic, joblib, "
                                "slurm, submitit_local, submitit_slurm"),
    (["method.lamb=1"], "error: Could not override 'method.lamb'. To append to your config use +method.lamb=1: Key "
                        "'lamb' is not in struct"),
    (["alpha=["], "error: cannot read the override 'alpha=[': no viable alternative at input '[' See "
                  "https://hydra.cc/docs/1.2/advanced/override_grammar/basic for details"),
])
def test_a_command_line_hydra_cannot_compose_is_one_line(overrides, line):
    with pytest.raises(CompactHydraException) as error:
        make_config(*overrides)
    assert composition_error(error.value) == line
