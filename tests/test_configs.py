"""Config tests: every option of every group composes, sweep axes reach the methods, presets name
real classes."""
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    CONF,
    ROOT,
    compose,
    config_names,
    method_class,
    page,
    sweep_jobs,
    write_image_folder,
)
from hydra.errors import CompactHydraException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from baselines.retrain import Retrain
from ccup.errors import UserError, check_group_choices, composition_error
from ccup.method import build

# a folder dataset of three classes, an image each
FOLDERS = {"bag": [10], "sandal": [20], "trouser": [30]}
# Options that need a value: a template file, a folder of images.
SETTINGS = {"prompts=file": [f"dataset.templates_file={CONF}/prompts/example.txt"],
            "dataset=folder":
                [f"dataset.root={write_image_folder(Path(tempfile.mkdtemp()), FOLDERS)}"]}
# each dataset's config, composed once when a test first asks (`dataset_config`): not at every
# collection
DATASETS = {}


def dataset_config(name: str):
    if name not in DATASETS:
        DATASETS[name] = compose(f"dataset={name}", *SETTINGS.get(f"dataset={name}", [])).dataset
    return DATASETS[name]


GROUPS = ["model", "dataset", "prompts", "forget", "method", "logger", "eval"]


@pytest.mark.parametrize("group, option", [(g, o) for g in GROUPS for o in config_names(g)])
def test_every_option_composes_and_resolves(group, option):
    cfg = compose(f"{group}={option}", *SETTINGS.get(f"{group}={option}", []))
    config = OmegaConf.to_container(cfg, resolve=True)
    assert config["alpha"] == 1.0 and config["seed"] == 0


@pytest.mark.parametrize("method", config_names("method"))
@pytest.mark.parametrize("alpha", [0, 0.5, 1])
def test_alpha_reaches_every_method(method, alpha):
    cfg = compose(f"method={method}")
    # as `alpha=...` on the command line sets it: the method's config must interpolate it
    cfg.alpha = alpha
    assert build(cfg.method).alpha == alpha


@pytest.mark.parametrize("forget", config_names("forget"))
def test_every_forget_preset_names_classes_of_a_dataset(forget):
    classes = set(compose(f"forget={forget}").forget.classes)
    assert classes, f"forget preset {forget} is empty"
    assert any(classes <= set(dataset_config(d).classnames) for d in config_names("dataset"))


def test_nullspace_is_ccup_without_retention_and_with_a_hard_constraint():
    method = build(compose("method=nullspace").method)
    assert (method.lam, method.mu) == (float("inf"), 0.0)


PROTOCOL_DATASETS = [name for name in config_names("dataset")
                     if "protocol_forget" in OmegaConf.load(CONF / "dataset" / f"{name}.yaml")]


def test_the_protocol_datasets_have_their_published_forget_classes():
    assert {"caltech101", "oxford_flowers", "stanford_cars",
            "stanford_dogs"} <= set(PROTOCOL_DATASETS)


@pytest.mark.parametrize("dataset", PROTOCOL_DATASETS)
def test_protocol_presets_pick_the_datasets_classes_alone_and_together(dataset):
    data = compose(f"dataset={dataset}").dataset
    protocol = list(data.protocol_forget)
    assert len(protocol) == len(set(protocol)) == 3 and set(protocol) <= set(data.classnames)
    singles = [list(compose(f"dataset={dataset}", f"forget=protocol_{i}").forget.classes)
               for i in (1, 2, 3)]
    assert singles == [[name] for name in protocol]
    assert list(compose(f"dataset={dataset}", "forget=protocol_all").forget.classes) == protocol


@pytest.mark.parametrize("dataset", config_names("dataset"))
def test_validation_and_test_forget_classes_split_the_dataset_by_their_rule(dataset):
    data = OmegaConf.to_container(dataset_config(dataset), resolve=True)
    validation, test = data["validation_forget"], data["test_forget"]
    outside = [name for name in data["classnames"] if name not in data.get("protocol_forget", [])]
    assert len(validation) == min(3, len(outside) // 2) and not set(validation) & set(test)
    assert sorted(validation + test) == sorted(data["classnames"])
    # the protocol's classes are reported only
    assert not set(validation) & set(data.get("protocol_forget", []))
    ordered = [outside[i] for i in np.random.default_rng(0).permutation(len(outside))]
    kind = {name: group for group, names in (data.get("kinds") or {}).items() for name in names}
    # one of each kind, in the draw's order
    if len({kind.get(name, name) for name in outside}) >= len(validation):
        assert len({kind.get(name, name) for name in validation}) == len(validation)
        assert sorted(validation, key=ordered.index) == validation
    else:
        assert validation == ordered[:len(validation)]


def test_the_classes_tuned_on_are_of_different_kinds_and_stand_for_the_reported_ones():
    garments, digits = dataset_config("fashion_mnist"), dataset_config("digits")
    # a top, a shoe, a bottom
    assert list(garments.validation_forget) == ["pullover", "ankle boot", "trouser"]
    assert list(garments.test_forget) == ["t-shirt", "dress", "coat", "sandal", "shirt", "sneaker",
                                          "bag"]
    assert list(digits.validation_forget) == ["2", "6", "4"]  # no kinds: the draw's first three
    assert list(digits.test_forget) == ["0", "1", "3", "5", "7", "8", "9"]


@pytest.mark.parametrize("k, draw", [(1, 0), (3, 0), (3, 1), (9, 7)])
def test_random_k_draws_k_distinct_classes_the_same_way_for_a_draw(k, draw):
    overrides = ["forget=random_k", f"forget.k={k}", f"forget.draw={draw}"]
    classes = list(compose(*overrides).forget.classes)
    assert len(classes) == len(set(classes)) == k
    assert set(classes) <= set(compose().dataset.classnames)
    assert classes == list(compose(*overrides).forget.classes)


def test_random_k_draws_differ_and_refuse_impossible_sizes():
    draws = {tuple(compose("forget=random_k", f"forget.draw={d}").forget.classes) for d in range(5)}
    assert len(draws) > 1
    for k in (0, 10):
        with pytest.raises(Exception, match=f"forget.k={k}: draw between 1 and 9"):
            list(compose("forget=random_k", f"forget.k={k}").forget.classes)


def test_prompt_presets_replace_the_datasets_templates_only(tmp_path):
    openai = compose("prompts=openai_imagenet")
    assert (len(openai.dataset.templates) == 80
            and openai.dataset.templates[0] == "a bad photo of a {}.")
    assert (list(openai.model.train_data.fashion_mnist.templates)
            == list(compose().dataset.templates))
    assert len(compose("prompts=simple_imagenet").dataset.templates) == 7
    (tmp_path / "mine.txt").write_text("# my prompts\na sketch of a {}.\n\nan x-ray of a {}.\n")
    mine = compose("prompts=file", f"dataset.templates_file={tmp_path / 'mine.txt'}")
    assert list(mine.dataset.templates) == ["a sketch of a {}.", "an x-ray of a {}."]
    (tmp_path / "bad.txt").write_text("a sketch\n")
    with pytest.raises(Exception, match="each with {} where the class name goes"):
        list(compose("prompts=file",
                     f"dataset.templates_file={tmp_path / 'bad.txt'}").dataset.templates)
    with pytest.raises(Exception, match="no template file at .*pass prompts=file "
                                        "dataset.templates_file=PATH"):
        list(compose("prompts=file", "dataset.templates_file=nope.txt").dataset.templates)


def test_cross_dataset_presets_name_real_datasets_and_skip_the_unlearned_one():
    cfg = compose()
    assert list(cfg.eval.cross.datasets) == ["fashion_mnist", "digits"]
    cross = instantiate(cfg.evaluator).evals["cross"]
    assert list(cross.datasets) == ["digits"]  # fashion_mnist is the one being unlearned
    protocol = compose("eval=[cross_protocol]", "dataset=caltech101").eval.cross.datasets
    assert list(protocol) == ["caltech101", "oxford_flowers", "stanford_cars", "stanford_dogs"]
    assert compose("eval=[]").evaluator.evals == {}


@pytest.mark.parametrize("experiment, model",
                         [("protocol_rn50", "RN50"), ("protocol_vit_b16", "ViT-B-16")])
def test_protocol_experiments_compose_every_job_of_their_sweep(experiment, model):
    params = OmegaConf.load(CONF / "experiment" / f"{experiment}.yaml").hydra.sweeper.params
    for dataset in params.dataset.split(","):
        for forget in params.forget.split(","):
            cfg = compose(f"experiment={experiment}", f"dataset={dataset}", f"forget={forget}")
            assert (cfg.model.name, cfg.model.pretrained) == (model, "openai")
            assert set(cfg.forget.classes) <= set(cfg.dataset.classnames)
            assert len(cfg.forget.classes) == (3 if forget == "protocol_all" else 1)
        cross = instantiate(cfg.eval.cross)  # the same for every forget set of a dataset
        assert sorted(cross.datasets) == sorted(set(params.dataset.split(",")) - {dataset})


@pytest.mark.parametrize("experiment", ["compare", "leakage"])
def test_comparisons_sweep_every_method_of_the_registry_the_oracle_included(experiment):
    methods = sorted({job["method"] for job in sweep_jobs(experiment)})
    assert methods == config_names("method") and "retrain" in methods


def test_your_comparison_sweeps_every_method_but_those_that_retrain_the_model():
    methods = sorted({job["method"] for job in sweep_jobs("compare_yours")})
    retrains = {name for name in config_names("method") if method_class(name) is Retrain}
    assert retrains == {"retrain", "retrain_reseeded", "retrain_unnamed"}
    assert methods == sorted(set(config_names("method")) - retrains) and "mask" in methods


def test_the_benchmark_reports_every_method_default_and_tuned_on_the_test_classes_at_full_strength(
):
    jobs = sweep_jobs("benchmark")
    tuned = [f"tuned/{name}" for name in config_names("method/tuned")]
    assert sorted({job["method"] for job in jobs}) == sorted(config_names("method") + tuned)
    # every search's choice
    assert set(tuned) >= {f"tuned/{name}" for name in config_names("hparams_search")}
    assert ({job["model"] for job in jobs} == {"tiny", "tiny_rn"}
            and {job["dataset"] for job in jobs} == {"fashion_mnist", "digits"})
    for dataset in ("fashion_mnist", "digits"):  # every test class alone, then four sets of several
        sets = [list(compose("experiment=benchmark", f"dataset={dataset}",
                             f"forget.index={index}").forget.classes)
                for index in sorted({int(job["forget.index"]) for job in jobs})]
        test = list(dataset_config(dataset).test_forget)
        assert (sets[:len(test)] == [[name] for name in test]
                and [len(s) for s in sets[len(test):]] == [2, 2, 3, 3])
        assert all(set(s) <= set(test) for s in sets) and len({tuple(s) for s in sets}) == len(sets)
    cfg = compose("experiment=benchmark")
    assert (cfg.alpha == 1 and cfg.test_images == "test"
            and len(jobs) == len({tuple(job.items()) for job in jobs}))


@pytest.mark.parametrize("overrides, line", [
    (["method=ccupp"], "error: method=ccupp: no such option; did you mean 'ccup'? method has "
                       + ", ".join(config_names("method"))),
    # adding the key would fail: no "+method.lamb" hint
    (["method.lamb=1"], "error: method.lamb: no such key; did you mean 'lam'? method has _target_, "
                        "alpha, role, lam, mu (ccup.method.CCUP takes no 'lamb')"),
    (["dataset.splitt=train"], "error: dataset.splitt: no such key; did you mean 'split'? dataset "
                               "has name, split, classnames, protocol_forget, templates, load, "
                               "synonyms, heldout_templates, files, kinds, validation_forget, "
                               "test_forget (+dataset.splitt=... adds a key)"),
    (["model.pretrained=/x.pt"], "error: model.pretrained: the embedded model (model=tiny) is "
                                 "trained by its recipe and loads no checkpoint; load one with an "
                                 "open_clip model config: model=vit_b32_openai "
                                 "model.name=ccup-tiny-p7 model.pretrained=PATH (or another "
                                 "architecture's name)"),
    (["alpha=["], "error: cannot read the override 'alpha=[': no viable alternative at input "
                  "'[' See https://hydra.cc/docs/1.2/advanced/override_grammar/basic for details"),
])
def test_a_command_line_hydra_cannot_compose_is_one_line(overrides, line):
    with pytest.raises(CompactHydraException) as error:
        compose(*overrides)
    assert composition_error(error.value) == line


@pytest.mark.parametrize("args, line", [
    (["forget=5"], "forget=5: an option of forget is the name of a file in conf/forget/, not a "
                   "number (forget has 'ankle_boot', 'bag', 'coat', 'dress', 'footwear', "
                   "'protocol_1', 'protocol_2', 'protocol_3', 'protocol_all', 'pullover', … and 7 "
                   "more); to forget classes by name: forget.classes=['5']"),
    (["-m", "forget=[sandal,bag]"], "forget=[sandal,bag]: forget takes one option (the files of "
                                    "several would be merged, the last one's settings winning): "
                                    "sweep them with -m forget=sandal,bag; to forget classes by "
                                    "name: forget.classes=[sandal,bag]"),
    (["method=ccup,[ccup,slug]"], "method=ccup,[ccup,slug]: method takes one option (the files of "
                                  "several would be merged, the last one's settings winning): "
                                  "sweep them with -m method=ccup,slug"),
])
def test_a_choice_hydra_would_merge_or_not_read_as_a_name_is_one_line(args, line):
    with pytest.raises(UserError) as error:
        check_group_choices(args, ROOT / "conf")
    assert str(error.value) == line


def test_the_choices_hydra_composes_as_meant_pass():
    # Hydra's line
    for args in (["forget=sandal"], ["-m", "forget=sandal,bag"], ["-m", "method=glob(*)"],
                 ["eval=[cross,probe]"], ["forget.classes=[3]"],
                 ["hydra/launcher=joblib", "--config-dir=x"], ["alpha=["]):
        check_group_choices(args, ROOT / "conf")


def test_a_launcher_hydra_does_not_have_is_named_beside_those_it_has():
    with pytest.raises(CompactHydraException) as error:
        compose("hydra/launcher=slurmm")
    line = composition_error(error.value)
    assert line.startswith("error: hydra/launcher=slurmm: no such option; did you mean 'slurm'? "
                           "hydra/launcher has ")
    assert {"basic", "joblib", "slurm"} <= set(line.rpartition(" has ")[2].split(", "))


def test_readme_shows_the_lines_a_command_line_hydra_cannot_compose_gets():
    examples = re.findall(r"^\$ python run.py (.+)\n(error: .+)$", page("running.md"), re.MULTILINE)
    assert len(examples) >= 3
    for overrides, line in examples:
        try:  # as run.py does: the group choices first, then Hydra's composition
            check_group_choices(overrides.split(), ROOT / "conf")
            with pytest.raises(CompactHydraException) as error:
                compose(*overrides.split())
            assert composition_error(error.value) == line
        except UserError as refused:
            assert f"error: {refused}" == line


def test_wandb_runs_are_named_by_what_sets_them_apart_and_grouped_by_sweep_experiment_or_method():
    cfg = compose("method.lam=100", "prompts=file",
                  f"dataset.templates_file={CONF}/prompts/example.txt", "seed=3",
                  "results_dir=elsewhere")
    assert cfg.logger.wandb.name == ("ccup alpha=1.0 forget=sandal seed=3 method.lam=100 "
                                     "prompts=file "
                                     f"dataset.templates_file={CONF}/prompts/example.txt")
    assert cfg.logger.wandb.group == "ccup-fashion_mnist"  # a one-off run: by method and dataset
    assert compose("method=finetune", "dataset=digits").logger.wandb.group == "finetune-digits"
    assert compose("hydra.mode=MULTIRUN").logger.wandb.group == "ccup-fashion_mnist"  # not the time
    assert compose("sweep=mine").logger.wandb.group == "mine"
    assert compose("experiment=leakage", "logger=wandb").logger.wandb.group == "leakage"
    assert compose("experiment=leakage", "logger=wandb", "sweep=mine").logger.wandb.group == "mine"


def test_the_ablation_is_a_config_headed_by_its_command_and_sweeps_ccups_grid_on_every_class():
    jobs = sweep_jobs("ablation")
    assert len(jobs) == 3 * 3 * 10 and {job["method.lam"] for job in jobs} == {"100", "1000", "inf"}
    garments = [name.replace(" ", "_").replace("-", "_")
                for name in dataset_config("fashion_mnist").classnames]
    assert sorted({job["forget"] for job in jobs}) == sorted(garments)
    assert ("#   python run.py -m experiment=ablation"
            in (CONF / "experiment" / "ablation.yaml").read_text())


def test_the_debug_preset_trains_three_steps_without_logger_or_extra_evaluations(tmp_path):
    cfg = compose("debug=default", "method=finetune", f"cache_dir={tmp_path}")
    assert (cfg.trainer.fast_dev_run, dict(cfg.logger), dict(cfg.eval)) == (3, {}, {})
    assert cfg.results_dir == "results/debug"  # never among real results
    assert build(cfg.method).trainer(max_steps=200).max_steps == 3  # Lightning's fast_dev_run wins
