"""A job's lifecycle around its pipeline (run.py's `unlearn`): skipped when its record is complete; bad values and an
unwritable record refused before any work; the record mirrored to the loggers and written whatever happens, complete
with its metrics and warnings of implausible numbers, or failed with its error on one line."""
import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ccup.errors import UserError, check_values, find_user_error, one_line
from ccup.loggers import finish_loggers, start_logger
from ccup.metrics import implausible
from ccup.provenance import provenance
from ccup.record import NOT_IDENTITY, check_writable, config_id, read_record, setting_ids, write_record

log = logging.getLogger(__name__)


def recorded(pipeline: Callable[[DictConfig, list], dict]) -> Callable[[DictConfig], dict | None]:
    """`pipeline(cfg, loggers) -> metrics` as a job of the suite, in the spirit of
    lightning-hydra-template's `task_wrapper`, with one result record per job:
    `<results_dir>/records/<id>.json` and `record.json` in the job's output folder. The pipeline
    gets the job's started loggers, for what it logs beside the record (curves, the exported model).
    Returns the metrics, or None for a job that failed inside a sweep (the launcher goes on with the
    others)."""

    @functools.wraps(pipeline)
    def job(cfg: DictConfig) -> dict | None:
        start = time.perf_counter()
        try:
            record = new_record(cfg)
        except UserError as exc:  # no identity without a resolved config: the failure is recorded in the job's folder
            unresolved = {"status": "failed", "error": one_line(exc), "overrides": task_overrides()}
            write_record(unresolved, Path(HydraConfig.get().runtime.output_dir) / "record.json")
            end_failed(exc, sweeping=HydraConfig.get().mode == RunMode.MULTIRUN)
            return None
        paths = record_paths(cfg, record["id"])
        if not cfg.rerun and (done := read_record(paths[0])) and done.get("status") == "complete":
            write_record(done, paths[1])
            log.info(f"skipped: the record {paths[0]} is complete (rerun=true runs the job again)")
            return done["metrics"]
        loggers = []
        failure = None
        try:
            check_values(record["config"], skip=NOT_IDENTITY)
            check_writable(*paths)  # before any work: a job that cannot keep its result does not start
            for node in cfg.logger.values():  # one by one: a logger that started is closed even if the next one fails
                loggers.append(start_logger(instantiate(node), record["config"]))
            metrics = pipeline(cfg, loggers)
            record.update(status="complete", metrics={**metrics, "time/job_s": time.perf_counter() - start},
                          warnings=implausible(metrics, cfg.alpha, len(cfg.dataset.classnames)))
            for warning in record["warnings"]:
                log.warning(f"warning: {warning}")
        except BaseException as exc:  # an interrupted job is a failed one too
            record.update(status="failed", error=one_line(exc))
            failure = exc
        try:
            write_record(record, *paths)
        except UserError as exc:  # the disk filled up meanwhile: no record, and the job failed
            record.update(status="failed", error=one_line(exc))
            failure = exc
        finally:
            finish_loggers(loggers, record)
        if failure is not None:
            end_failed(failure, sweeping=HydraConfig.get().mode == RunMode.MULTIRUN)
            return None
        log.info(done_line(record["metrics"]))
        return record["metrics"]

    return job


def new_record(cfg: DictConfig) -> dict:
    """A running job's record: its identity, resolved config, choices and overrides, and where its code came from.
    A config that does not resolve (an interpolation to nothing, a mandatory value left unset) is refused by name."""
    hydra = HydraConfig.get()
    choices = {group: option for group, option in hydra.runtime.choices.items() if not group.startswith("hydra/")}
    try:
        missing = sorted(OmegaConf.missing_keys(cfg))
        identity = config_id(cfg)
        settings = setting_ids(cfg)
        config = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        if (error := find_user_error(exc)) is not None:  # a resolver's own word on its input (ccup/resolvers.py)
            raise error from exc
        raise UserError(f"the config does not resolve: {exc}: set the value it names") from exc
    if missing:
        raise UserError(f"no value for {', '.join(missing)} (???): set it, e.g. {missing[0]}=...")
    return {"id": identity, **settings, "status": "running", "config": config, "choices": choices,
            "overrides": task_overrides(), **provenance()}


def task_overrides() -> list[str]:
    """The job's overrides as written: an override may hold `${...}`, which is not to be resolved here."""
    return OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False)


def record_paths(cfg: DictConfig, record_id: str) -> list[Path]:
    """Where a job's record goes: into the results folder, where a rerun looks for it, and the job's output folder."""
    return [Path(cfg.results_dir) / "records" / f"{record_id}.json",
            Path(HydraConfig.get().runtime.output_dir) / "record.json"]


def end_failed(exc: BaseException, sweeping: bool) -> None:
    """End a job that failed, once its record is written. Alone, it exits non-zero with one `error:` line, or with
    the traceback of an error that is not the user's. In a sweep it logs the same and returns, so the launcher goes
    on with the other jobs (Hydra's launchers stop at a job that raises); an interrupt still stops the sweep."""
    user_error = find_user_error(exc)
    if sweeping and isinstance(exc, Exception):
        log.error(f"error: {one_line(exc)}", exc_info=exc if user_error is None else None)
        return
    if user_error is not None:
        raise SystemExit(f"error: {one_line(exc)}") from None
    raise exc


def done_line(metrics: dict) -> str:
    """The line a complete job ends with."""
    return (f"done in {metrics['time/job_s']:.1f} s: forget/acc {metrics['forget/acc']:.2f} (before "
            f"{metrics['forget/acc_before']:.2f}), retain/acc {metrics['retain/acc']:.2f} "
            f"(before {metrics['retain/acc_before']:.2f})")
