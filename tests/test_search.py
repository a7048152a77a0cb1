"""A method's hyperparameter search (conf/hparams_search/) end to end: trials scored on the
validation classes against the oracle, each leaving its records, and a killed search run again going
on where it stopped."""
import json
import time
from pathlib import Path

import optuna
import pytest
from helpers import CONF, ROOT, config_names, page, start_suite, suite_in_process
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from ccup.configs import compose as job_config
from ccup.search import (
    busy_seconds,
    defaults_and_tuned,
    method_overrides,
    render,
    render_settings,
    studies,
    tuned_config,
    unit_overrides,
)

pytestmark = pytest.mark.slow
# CCUP's search cut short: three trials, one at a time, on one class, against an oracle retrained
# for two steps.
SEARCH = ("-m", "hparams_search=ccup", "hydra.sweeper.n_trials=3", "hydra.sweeper.n_jobs=1",
          "search.models=[tiny]", "search.datasets=[fashion_mnist]", "search.forget=[sandal]",
          "search.oracle_settings.max_steps=2")


def study(tmp_path) -> optuna.Study:
    return optuna.load_study(study_name="ccup", storage=f"sqlite:///{tmp_path}/results/optuna.db")


def test_a_killed_search_resumes_where_it_stopped(tmp_path, tiny):
    search = start_suite(tmp_path, *SEARCH)
    second = tmp_path / "multirun" / "1" / ".hydra"
    while not second.exists() and search.poll() is None:
        time.sleep(0.01)
    search.kill()  # SIGKILL, in the second trial
    search.wait()
    assert [trial.state.name for trial in study(tmp_path).trials] == ["COMPLETE", "RUNNING"]

    # run again, through Hydra's Optuna sweeper in this process
    result = suite_in_process(tmp_path, *SEARCH)
    assert result.exit is None, result.stdout
    trials = study(tmp_path).trials
    # 3, not 1 + 3
    assert [trial.state.name for trial in trials] == ["COMPLETE", "RUNNING", "COMPLETE", "COMPLETE"]
    settings = [tuple(trial.params.values()) for trial in trials]
    # the sampler, seeded anew, does not propose the first run's settings again
    assert len(set(settings)) == 4
    summary = json.loads((tmp_path / "multirun" / "1" / "record.json").read_text())
    ccup, oracle = (json.loads((tmp_path / "results" / "records" / f"{id}.json").read_text())
                    for id in summary["records"])
    assert ccup["config"]["method"]["lam"] == trials[3].params["method.lam"]
    assert (oracle["choices"]["method"] == "retrain"
            and oracle["config"]["forget"]["classes"] == ["sandal"])
    terms = ["forget/acc", "retain/acc", "cross/digits/acc", "retrieval/forget_ap",
             "retrieval/retain_map", "forget/acc_heldout_prompts"]  # the headline's: each once
    gap = sum(abs(ccup["metrics"][term] - oracle["metrics"][term]) for term in terms) / len(terms)
    assert summary["value"] == pytest.approx(gap) == trials[3].value
    assert "skipped: the record" in result.stdout  # the oracle's job ran in the first trial only


@pytest.mark.parametrize("name", ["3", "men's shirt"])
def test_a_units_forget_class_stays_its_name_on_the_command_line(name):
    trial = ["hparams_search=ccup", "method.lam=10", "forget.classes=[sandal]", "model=tiny"]
    unit = {"model": "tiny_rn", "dataset": "digits", "forget": name}
    overrides = unit_overrides(trial, "ccup", unit, "retrain")
    assert overrides[:2] == ["hparams_search=ccup", "method=retrain"]  # not the trial's lam
    parsed = OverridesParser.create().parse_overrides(overrides)
    assert parsed[-1].value() == [name] and parsed[-3].value() == "tiny_rn"


def test_the_oracles_settings_reach_its_config_null_as_null():
    # the searches' own setting, max_steps: null, is the oracle's whole recipe
    overrides = method_overrides({"max_steps": None, "unnamed": True, "seed": 3})
    method = job_config("method=retrain", *overrides).method
    assert (method.max_steps, method.unnamed, method.seed) == (None, True, 3)


def test_every_tunable_method_has_a_search_and_the_searches_share_one_budget():
    searches = config_names("hparams_search")
    assert searches and set(searches) <= set(config_names("method")) - {"nullspace", "retrain"}
    for name in searches:
        with initialize_config_dir(str(CONF), version_base="1.3"):
            cfg = compose("config", overrides=[f"hparams_search={name}"], return_hydra_config=True)
        assert cfg.hydra.sweeper.n_trials == 20 and cfg.hydra.sweeper.sampler.seed == 0
        assert cfg.hydra.sweeper.study_name == name and cfg.results_dir == f"results/search/{name}"
        assert cfg.search.forget is None and cfg.alpha == 1 and cfg.test_images == "validation"
        assert (list(cfg.search.models) == ["tiny", "tiny_rn"]
                and list(cfg.search.datasets) == ["fashion_mnist", "digits"])
        header = (CONF / "hparams_search" / f"{name}.yaml").read_text().split("defaults:")[0]
        # headed by the command that runs it
        assert f"#   python run.py -m hparams_search={name} " in header


def test_the_searches_table_gives_each_studys_trials_time_and_best(tmp_path):
    storage = tmp_path / "ccup" / "optuna.db"
    storage.parent.mkdir()
    made = optuna.create_study(study_name="ccup", storage=f"sqlite:///{storage}")
    for value in (2.0, 0.5):
        trial = made.ask({"method.lam": optuna.distributions.LogUniformDistribution(1, 1e5)})
        made.tell(trial, value)
    made.tell(made.ask(), state=optuna.trial.TrialState.FAIL)
    row = studies(tmp_path).iloc[0]
    assert (row["method"], row["complete"], row["failed"], row["best gap"]) == ("ccup", 2, 1, 0.5)
    assert row["best settings"].startswith("method.lam=") and row["wall min"] >= 0


def test_a_search_with_no_trial_complete_has_chosen_no_setting_yet(tmp_path):
    for name, values in (("ccup", {"method.lam": 10.0, "method.mu": 0.5}), ("slug", None)):
        (tmp_path / name).mkdir()
        made = optuna.create_study(study_name=name,
                                   storage=f"sqlite:///{tmp_path / name / 'optuna.db'}")
        made.ask()  # a trial killed at once: RUNNING
        if values is not None:
            made.add_trial(optuna.trial.create_trial(
                params=values, value=1.0,
                distributions={key: optuna.distributions.UniformDistribution(0, 1e4)
                               for key in values}))
    table = defaults_and_tuned(tmp_path, CONF)  # ssd and the others: not searched here
    assert list(table["method"]) == ["ccup", "ccup"] and list(table["tuned"]) == ["10", "0.5"]


def test_readme_quotes_the_committed_searches_as_their_studies_give_them():
    table = studies(ROOT / "results" / "search")
    assert set(table["method"]) == set(config_names("hparams_search"))  # every search has run
    readme = page("protocol.md")
    assert render(table) in readme, "protocol.md's searches table is stale"
    settings = defaults_and_tuned(ROOT / "results" / "search", CONF)
    assert set(settings["method"]) == set(table["method"])
    assert render_settings(settings) in readme, "protocol.md's defaults-and-tuned table is stale"


def test_no_class_and_no_image_half_is_both_searched_and_reported():
    """The committed searches tuned on validation classes and images alone, the committed benchmark
    reports test classes and images alone, the cross-dataset evaluation's included."""
    def seen(pattern: str, half: str) -> set[tuple[str, str]]:
        classes = set()
        for path in (ROOT / "results").glob(pattern):
            config = json.loads(path.read_text())["config"]
            forget, dataset = config["forget"]["classes"], config["dataset"]
            cross = config["eval"].get("cross", {}).get("test_images", half)
            assert (config.get("test_images"), cross) == (half, half), path
            assert set(forget) <= set(dataset[f"{half}_forget"]), path
            classes |= {(dataset["name"], name) for name in forget}
        return classes

    searched = seen("search/*/records/*.json", "validation")
    reported = seen("benchmark/records/*.json", "test")
    assert len(searched) == 6 and len(reported) >= 7 and not searched & reported


@pytest.mark.parametrize("name", config_names("method/tuned"))
def test_a_tuned_method_has_the_best_settings_of_its_committed_search(name, monkeypatch):
    best = optuna.load_study(study_name=name,
                             storage=f"sqlite:///{ROOT}/results/search/{name}/optuna.db").best_trial
    tuned = job_config(f"method=tuned/{name}")
    for key, value in best.params.items():
        # a config group's option (method/lipschitz_schedule): its values, in the method's config
        if "/" in key:
            option = OmegaConf.load(CONF / f"{key}/{value}.yaml")
            assert all(tuned.method.module[k] == v for k, v in option.items()), key
        else:
            assert OmegaConf.select(tuned, key) == value, key
    text = (CONF / "method" / "tuned" / f"{name}.yaml").read_text()
    # the search minimised the headline gap, and the tuned config says so
    metric = job_config(f"hparams_search={name}").search.metric
    assert metric == "gap/headline"
    assert f"the best of its 20 trials (mean\n# {metric} {best.value:.4f}" in text
    monkeypatch.chdir(ROOT)
    written = tuned_config(Path("results/search"), name, CONF / "method", metric)
    assert text == written, "python -m ccup.search --tuned"


def test_a_searchs_wall_time_leaves_out_the_time_it_was_not_running():
    # two trials side by side (0-10, 5-12), then the search killed and resumed a day later
    # (86400-86410)
    assert busy_seconds([(5, 12), (0, 10), (86400, 86410)]) == 22
    assert busy_seconds([]) == 0
