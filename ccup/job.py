"""A job's lifecycle around its pipeline (ccup.pipeline.job): skipped when its record is complete
and its code and data are as they were (ccup.fingerprint), run again with the reason otherwise; bad
values and an unwritable record refused before any work; the record mirrored to the loggers and
written whatever happens, complete with its metrics, warnings of implausible numbers and the
digests of its code and data, or failed with its error on one line. Where a job runs (`Job`) is an
argument: read from Hydra by the command line, set by a search for each job of its trials."""
import functools
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ccup import fingerprint
from ccup.classnames import by_class_name, check_forget_set
from ccup.errors import (
    UserError,
    check_keywords,
    check_values,
    find_user_error,
    leaves,
    one_line,
)
from ccup.loggers import finish_loggers, start_logger
from ccup.provenance import provenance
from ccup.record import (
    NOT_IDENTITY,
    check_writable,
    read_record,
    record_ids,
    write_record,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """Where a job runs, beside its config: its output folder (its `record.json`, an exported
    model), whether it is one job of a sweep (a failure then fails it alone, and the launcher goes
    on), and the config group choices and command-line overrides its config was composed from (its
    record keeps them)."""

    output_dir: Path
    sweeping: bool = False
    choices: Mapping[str, str] = field(default_factory=dict)
    overrides: Sequence[str] = ()

    @classmethod
    def from_hydra(cls) -> "Job":
        """The job Hydra is running (run.py's main, or a config composed by
        ccup.configs.compose)."""
        hydra = HydraConfig.get()
        choices = {group: option for group, option in hydra.runtime.choices.items()
                   if not group.startswith("hydra/")}
        # As written: an override may hold `${...}`, which is not to be resolved here.
        overrides = OmegaConf.to_container(hydra.overrides.task, resolve=False)
        return cls(Path(hydra.runtime.output_dir), hydra.mode == RunMode.MULTIRUN, choices,
                   overrides)

    @property
    def export_dir(self) -> Path:
        """Where the job writes the unlearned model with export=true."""
        return self.output_dir / "checkpoint"


def recorded(pipeline: Callable[[DictConfig, Job, list], dict]
             ) -> Callable[[DictConfig, Job], dict | None]:
    """`pipeline(cfg, job, loggers) -> metrics` as a job of the suite, in the spirit of
    lightning-hydra-template's `task_wrapper`, with one result record per job:
    `<results_dir>/records/<id>.json` and `record.json` in the job's output folder. The pipeline
    gets the job's started loggers, for what it logs beside the record (curves, the exported model).
    Returns the metrics, or None for a job that failed inside a sweep (the launcher goes on with the
    others)."""

    @functools.wraps(pipeline)
    def run_job(cfg: DictConfig, job: Job) -> dict | None:
        start, start_cpu = time.perf_counter(), cpu_seconds()
        try:
            record = new_record(cfg, job)
        # no identity without a resolved config: the failure is recorded in the job's folder
        except UserError as exc:
            unresolved = {"status": "failed", "error": one_line(exc),
                          "overrides": list(job.overrides)}
            write_record(unresolved, job.output_dir / "record.json")
            end_failed(exc, sweeping=job.sweeping)
            return None
        paths = record_paths(cfg, record["id"], job)
        if not cfg.rerun and (done := read_record(paths[0])) and done.get("status") == "complete":
            if (change := changed(done, record, cfg.export)) is None:
                write_record(done, paths[1])
                kept = f"; checkpoint {done['checkpoint']}" if cfg.export else ""
                log.info(f"skipped: the record {paths[0]} is complete (rerun=true runs the job "
                         f"again){kept}")
                return done["metrics"]
            log.info(f"rerunning: {change}")
        loggers = []
        failure = None
        try:
            check_values(record["config"], skip=NOT_IDENTITY)
            check_keywords(record["config"], skip=NOT_IDENTITY)
            # before any work: a job that cannot keep its result does not start
            check_writable(*paths)
            # one by one: a logger that started is closed even if the next one fails
            for node in cfg.logger.values():
                loggers.append(start_logger(instantiate(node), record["config"]))
            metrics = pipeline(cfg, job, loggers)
            if cfg.export:
                record["checkpoint"] = str(job.export_dir)
            record.update(status="complete",
                          metrics={**metrics, "time/job_s": time.perf_counter() - start,
                                   "time/job_cpu_s": cpu_seconds() - start_cpu},
                          warnings=implausible(metrics, cfg.alpha, len(cfg.dataset.classnames)))
            for warning in record["warnings"]:
                log.warning(f"warning: {warning}")
        except BaseException as exc:  # an interrupted job is a failed one too
            record.update(status="failed", error=one_line(exc))
            failure = exc
        record["code"] = fingerprint.code()  # at the end: every module the job imported, lazily too
        try:
            write_record(record, *paths)
        except UserError as exc:  # the disk filled up meanwhile: no record, and the job failed
            record.update(status="failed", error=one_line(exc))
            failure = exc
        finally:
            finish_loggers(loggers, record)
        if failure is not None:
            end_failed(failure, sweeping=job.sweeping)
            return None
        log.info(done_line(record["metrics"], paths[0], job.export_dir if cfg.export else None))
        return record["metrics"]

    return run_job


def cpu_seconds() -> float:
    """CPU seconds of this process, all its threads, and of the processes it started and waited
    for: a job's cost, which grows far less than its wall time when other work shares the cores."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def new_record(cfg: DictConfig, job: Job) -> dict:
    """A running job's record: its identity, resolved config, choices and overrides, and where its
    code came from. A config that does not resolve (an interpolation to nothing, a mandatory value
    left unset) is refused by name."""
    try:
        # First: the forget set is the mistake a command line makes most, and the cheapest to find
        # (no model, no data)
        check_forget_set(by_class_name(cfg.forget.classes, cfg.dataset.get("names")),
                         cfg.dataset.classnames)
        # on the unresolved config: OmegaConf.missing_keys resolves every interpolation on its way
        missing = sorted(key for key, value, _ in leaves(OmegaConf.to_container(cfg))
                         if value == "???")
        ids = record_ids(cfg)
        config = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        # a resolver's own word on its input (ccup/resolvers.py)
        if (error := find_user_error(exc)) is not None:
            raise error from exc
        raise UserError(f"the config does not resolve: {exc}: set the value it names") from exc
    if missing:
        raise UserError(f"no value for {', '.join(missing)} (???): set it, e.g. {missing[0]}=...")
    return {**ids, "status": "running", "config": config,
            "choices": dict(job.choices), "overrides": list(job.overrides),
            "data": fingerprint.data(config), **provenance()}


def record_paths(cfg: DictConfig, record_id: str, job: Job) -> list[Path]:
    """Where a job's record goes: into the results folder, where a rerun looks for it, and the job's
    output folder."""
    return [Path(cfg.results_dir) / "records" / f"{record_id}.json", job.output_dir / "record.json"]


def end_failed(exc: BaseException, sweeping: bool) -> None:
    """End a job that failed, once its record is written. Alone, it exits non-zero with one `error:`
    line, or with the traceback of an error that is not the user's. In a sweep it logs the same and
    returns, so the launcher goes on with the other jobs (Hydra's launchers stop at a job that
    raises); an interrupt still stops the sweep."""
    user_error = find_user_error(exc)
    if sweeping and isinstance(exc, Exception):
        log.error(f"error: {one_line(exc)}", exc_info=exc if user_error is None else None)
        return
    if user_error is not None:
        raise SystemExit(f"error: {one_line(exc)}") from None
    raise exc


def changed(done: dict, record: dict, export: bool) -> str | None:
    """Why a job whose record is complete runs again, in a few words; None where it is skipped:
    what changed since (ccup.fingerprint), or, with export=true, that no model of it is kept."""
    if (change := fingerprint.change(done, record["data"])) is not None:
        return change
    folder = done.get("checkpoint")
    # every export writes one
    if not export or folder and (Path(folder) / "manifest.json").is_file():
        return None
    return ("export=true, and no model of this job is kept (its run exported none, or its "
            "checkpoint is gone)")


def done_line(metrics: dict, record: Path, checkpoint: Path | None = None) -> str:
    """The line a complete job ends with: its accuracies, where its record is, and its exported
    model if any."""
    kept = f"; record {record}" + (f", checkpoint {checkpoint}" if checkpoint is not None else "")
    return (f"done in {metrics['time/job_s']:.1f} s: forget/acc {metrics['forget/acc']:.2f} "
            f"(before {metrics['forget/acc_before']:.2f}), retain/acc {metrics['retain/acc']:.2f} "
            f"(before {metrics['retain/acc_before']:.2f}){kept}")


@recorded
def run(cfg: DictConfig, job: Job, loggers: list) -> dict:
    """One unlearning job of the suite, recorded: the pipeline (ccup.pipeline.run), imported once
    the job's own checks have passed, so that a mistake is answered before torch, Lightning and
    open_clip load."""
    from ccup import pipeline

    return pipeline.run(cfg, job, loggers)


def implausible(metrics: dict, alpha: float, classes: int) -> list[str]:
    """What makes a complete job's numbers suspect, as sentences saying what to check: the forget
    classes recognised no better than chance before unlearning (a class list out of the labels'
    order reads 0.00 before and after), or a full unlearning that left their accuracy where it was
    (a projection can lower the class's score while every other score falls further)."""
    before, after = metrics.get("forget/acc_before"), metrics.get("forget/acc")
    chance = 100 / classes
    warnings = []
    if before is not None and before <= chance:
        warnings.append(f"forget/acc before unlearning is {before:.2f} %, at or below chance "
                        f"({chance:.2f} % for {classes} classes): check that the class names "
                        "follow the order of the dataset's labels")
    if (alpha == 1 and before is not None and after is not None and before > chance
            and after >= before):
        warnings.append(f"forget/acc did not fall at alpha = 1 ({after:.2f} %, {before:.2f} % "
                        "before): the method left the class as it was; check its settings")
    return warnings
