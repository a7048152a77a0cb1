"""One trial of a method's hyperparameter search (conf/hparams_search/): the number Optuna's sweeper
minimises.

A trial runs the method, with the settings the sampler chose, on each model of `search.models` and
each dataset of `search.datasets`, each of the dataset's validation forget classes in turn, and the
oracle on each, as jobs of the suite in folders of their own under the trial's, each writing its
record like any job. Their mean gap to the oracle (`search.metric`, the report's headline) is the
trial's value. The oracle's jobs are complete after the first trial, so later trials read their
records; its retrained weights are cached.
"""
import json
import logging
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pandas as pd
from hydra import compose
from omegaconf import DictConfig, OmegaConf, open_dict

from ccup import storage
from ccup.errors import UserError
from ccup.job import Job, run
from ccup.report import ORACLE, records_table
from ccup.roles import declared_role, role_of

log = logging.getLogger(__name__)


def trial(cfg: DictConfig, job: Job) -> float:
    """The mean of `cfg.search.metric` over the search's units (`units`) for the method of `cfg`,
    read against the oracle `cfg.search.oracle` at alpha = 1, each a job of the pipeline in a folder
    of its own under the trial's (`job`). Writes the trial's own record, its value and its jobs'
    records, into its output folder. Raises UserError (a failed trial, to Optuna) when a job failed
    or the metric is missing."""
    oracle = compose("config", overrides=[f"method={cfg.search.oracle}"]).method
    if role_of(oracle) != ORACLE:
        raise UserError(f"search.oracle={cfg.search.oracle}: its config (conf/method/) "
                        f"declares role {role_of(oracle)!r}, not {ORACLE!r}: name the method every "
                        "trial is read against")
    settings = method_overrides(cfg.search.oracle_settings)
    method, units = job.choices["method"], list(search_units(cfg.search))
    records = [run_as(job, unit, method=method) for unit in units]
    records += [run_as(job, unit, method=cfg.search.oracle, settings=settings) for unit in units]
    table = records_table([] if None in records else records)
    values = (table.loc[table["role"] != ORACLE, cfg.search.metric] if cfg.search.metric in table
              else [])
    value = float(values.mean()) if len(values) == len(units) else float("nan")
    named = [" ".join(unit.values()) for unit in units]
    summary = {"status": "complete" if value == value else "failed", "value": value,
               "metric": cfg.search.metric, "units": named,
               "records": [r["id"] for r in records if r is not None]}
    storage.write_bytes(json.dumps(summary, indent=2).encode(), job.output_dir / "record.json")
    if value != value:  # NaN: Optuna records the trial as failed when its job raises
        raise UserError(f"the trial has no {cfg.search.metric}: a job failed, or the oracle's "
                        f"records lack it (see {job.output_dir})")
    log.info(f"trial: {cfg.search.metric} {value:.4f} over {len(units)} forget classes "
             f"({', '.join(named)})")
    return value


def search_units(search: DictConfig) -> Iterator[dict[str, str]]:
    """What a trial scores a method on: each model of `search.models` with each dataset of
    `search.datasets`, each forget class of `search.forget` or, where that is null, of the dataset's
    validation classes, forgotten alone."""
    for model in search.models:
        for dataset in search.datasets:
            names = search.forget
            if names is None:
                names = compose("config",
                                overrides=[f"dataset={dataset}"]).dataset.validation_forget
            for name in names:
                yield {"model": model, "dataset": dataset, "forget": name}


def run_as(trial: Job, unit: dict[str, str], method: str,
           settings: Sequence[str] = ()) -> dict | None:
    """The pipeline on the trial's config with `method` (with `settings` on top, or the sampler's
    choices where it is the trial's method) on one unit (model, dataset, forget class), composed as
    the command line composes it, writing into its own folder under the trial's; its record, None
    where the job failed."""
    overrides = unit_overrides(trial.overrides, trial.choices["method"], unit, method, settings)
    job_cfg = compose("config", overrides=overrides)
    with open_dict(job_cfg):
        del job_cfg["search"]
    folder = trial.output_dir / "-".join([method.replace("/", "_"), *unit.values()])
    job = Job(folder, trial.sweeping, {**trial.choices, **unit, "method": method}, overrides)
    metrics = run(job_cfg, job)
    return None if metrics is None else json.loads((folder / "record.json").read_text())


def method_overrides(settings: Mapping) -> list[str]:
    """`settings` of a method's config as command-line overrides, each value as Hydra's grammar
    spells it: null, where Python writes None (a string `None` to Hydra)."""
    return [f"method.{key}={'null' if value is None else value}"
            for key, value in settings.items()]


def unit_overrides(trial: Sequence[str], trial_method: str, unit: dict[str, str], method: str,
                   settings: Sequence[str] = ()) -> list[str]:
    """A unit's command line: the trial's own overrides but the unit's keys, and the sampler's
    choices of the method for the method alone. The forget class is quoted, so that a digit's name
    stays a name (`'3'`, not the number 3)."""
    replaced = ("model", "dataset", "forget") + (() if method == trial_method else ("method",))
    chosen = [o for o in trial if not o.split("=")[0].lstrip("+~").startswith(replaced)]
    name = unit["forget"].replace("'", "\\'")
    return [*chosen, f"method={method}", *settings, f"model={unit['model']}",
            f"dataset={unit['dataset']}", f"forget.classes=['{name}']"]


def studies(root: Path) -> pd.DataFrame:
    """One row per search under `root` (<method>/optuna.db, as conf/hparams_search/ writes them):
    its trials that completed and failed, its wall time (first trial's start to last one's end), the
    best trial's value and settings."""
    import optuna

    rows = []
    for db in sorted(Path(root).glob("*/optuna.db")):
        study = optuna.load_study(study_name=db.parent.name, storage=f"sqlite:///{db}")
        ended = [t for t in study.trials if t.datetime_complete is not None]
        states = [t.state.name for t in study.trials]
        best = study.best_trial if "COMPLETE" in states else None
        wall = busy_seconds([(t.datetime_start.timestamp(), t.datetime_complete.timestamp())
                             for t in ended])
        rows.append({"method": study.study_name, "complete": states.count("COMPLETE"),
                     "failed": states.count("FAIL"),
                     "wall min": wall / 60 if ended else float("nan"),
                     "best gap": best.value if best else float("nan"),
                     "best settings": " ".join(f"{k}={v:.4g}" if isinstance(v, float)
                                               else f"{k}={v}"
                                               for k, v in (best.params if best else {}).items())})
    return pd.DataFrame(rows)


def busy_seconds(spans: list[tuple[float, float]]) -> float:
    """How long at least one of the (start, end) spans was under way: a search's wall time, without
    the time between a killed search and its resumption."""
    busy, reached = 0.0, float("-inf")
    for start, end in sorted(spans):
        busy += max(0.0, end - max(start, reached))
        reached = max(reached, end)
    return busy


def tuned_config(root: Path, name: str, conf: Path, metric: str) -> str:
    """The text of conf/method/tuned/<name>.yaml: the method's config (`conf`/method/<name>.yaml)
    with the settings of the best trial of its study under `root`, headed by where they come from
    (`metric`: what the study minimised). A config group the search chose
    (method/lipschitz_schedule) is written out as the option's values."""
    import optuna

    study = optuna.load_study(study_name=name, storage=f"sqlite:///{root / name / 'optuna.db'}")
    best, complete = study.best_trial, sum(t.state.name == "COMPLETE" for t in study.trials)
    commits = sorted({json.loads(path.read_text())["git_sha"][:7]
                      for path in (root / name / "records").glob("*.json")})
    settings = OmegaConf.create()
    # the oracle's or the anchor's tuned variant is a method beside it
    if declared_role(name) != "method":
        settings.role = "method"
    for key, value in sorted(best.params.items()):
        if "/" in key:  # a group's option: its values where its `# @package` header puts them
            option = conf.parent / f"{key}/{value}.yaml"
            package = (option.read_text().split("# @package ", 1)[1].split()[0]
                       .removeprefix("method."))
            OmegaConf.update(settings, package, OmegaConf.load(option), merge=True)
        else:
            OmegaConf.update(settings, key.removeprefix("method."), value)
    header = (f"# {name} with the settings its search chose: hparams_search={name}, the best of "
              f"its {complete} trials (mean\n# {metric} {best.value:.4f} over the "
              f"validation classes; study {root / name / 'optuna.db'}, its\n# records beside it, "
              f"run at commit {', '.join(commits)}). Written by `python -m ccup.search --tuned "
              f"{name}`;\n# the authors' or hand-set defaults stay in ../{name}.yaml.\n")
    defaults = f"defaults:\n  - /method/{name}@_here_\n  - _self_\n\n"
    return header + defaults + OmegaConf.to_yaml(settings)


def defaults_and_tuned(root: Path, conf: Path) -> pd.DataFrame:
    """One row per searched setting of each method with a tuned config: its value in the method's
    own config (the authors' or hand-set default) and the value its search chose (the best trial of
    its study under `root`; none where no trial of it has completed)."""
    import optuna

    from ccup.configs import compose as job_config

    rows = []
    for path in sorted((conf / "method" / "tuned").glob("*.yaml")):
        name, db = path.stem, root / path.stem / "optuna.db"
        # a search not run, or under way with no trial complete yet, has chosen nothing
        if not db.is_file():
            continue
        study = optuna.load_study(study_name=name, storage=f"sqlite:///{db}")
        if not any(t.state.name == "COMPLETE" for t in study.trials):
            continue
        best = study.best_trial
        default = job_config(f"method={name}")
        # the options compose chose, method/lipschitz_schedule's too
        choices = Job.from_hydra().choices
        for key, chosen in sorted(best.params.items()):
            value = choices[key] if "/" in key else OmegaConf.select(default, key)
            rows.append({"method": name, "setting": key.removeprefix("method."),
                         "default": short(value), "tuned": short(chosen)})
    return pd.DataFrame(rows)


def short(value) -> str:
    """A setting's value as its config spells it, floats to four digits."""
    if value is None:
        return "null"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> None:
    """`python -m ccup.search [results/search]`: the searches' table, then each searched setting's
    default and tuned value. `python -m ccup.search --tuned NAME ...`: write
    conf/method/tuned/NAME.yaml from the study of each NAME under results/search, which minimised
    the metric of conf/hparams_search/NAME.yaml."""
    args = argv if argv is not None else sys.argv[1:]
    if args[:1] == ["--tuned"]:
        from ccup.configs import compose as job_config

        conf = Path(__file__).parents[1] / "conf" / "method"
        for name in args[1:]:
            metric = job_config(f"hparams_search={name}").search.metric
            text = tuned_config(Path("results/search"), name, conf, metric)
            path = storage.write_bytes(text.encode(), conf / "tuned" / f"{name}.yaml")
            print(f"wrote {path}")
        return
    root = Path((args or ["results/search"])[0])
    table = studies(root)
    print(render(table) if not table.empty else f"no searches under {root}")
    if not table.empty:
        print("\n" + render_settings(defaults_and_tuned(root, Path(__file__).parents[1] / "conf")))


def render(table: pd.DataFrame) -> str:
    """The searches' table as README quotes it."""
    return table.to_markdown(index=False, floatfmt=".3f")


def render_settings(table: pd.DataFrame) -> str:
    """The defaults and tuned values as README quotes them, each value as written (4 significant
    digits)."""
    return table.to_markdown(index=False, disable_numparse=True,
                             colalign=["left", "left", "right", "right"])


if __name__ == "__main__":
    main()
