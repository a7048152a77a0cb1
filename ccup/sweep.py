"""How a sweep holds together: its jobs share one name, a failed job fails alone (its record says why and the
launcher goes on with the others), and the sweep ends with a summary naming every failure and an exit status that is
non-zero if there is one."""
import json
import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from ccup import storage
from ccup.errors import find_user_error, one_line
from ccup.record import read_record

log = logging.getLogger(__name__)

NO_RECORD = "no record: the job was killed, or its record could not be written (see its log)"


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


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The output folders of a sweep's jobs: Hydra writes .hydra/ into each before its job starts, the job its
    record.json when it ends. Ordered by job number."""
    found = {path.parent for pattern in (".hydra", "record.json") for path in sweep_dir.rglob(pattern)}
    return sorted(found, key=lambda d: (int(d.name) if d.name.isdigit() else -1, str(d)))


def job_outcome(job_dir: Path) -> dict:
    """A job's overrides, status and error, from its folder; a job that left no record failed."""
    overrides = job_dir / ".hydra" / "overrides.yaml"
    record = read_record(job_dir / "record.json") or {"status": "failed", "error": NO_RECORD}
    return {"job": str(job_dir), "overrides": list(OmegaConf.load(overrides)) if overrides.exists() else [],
            "status": record["status"], "error": record.get("error")}


def summarize(outcomes: list[dict]) -> dict:
    """Counts, and every job that did not complete, named by the overrides that set it apart from the others."""
    shared = set.intersection(*(set(o["overrides"]) for o in outcomes)) if len(outcomes) > 1 else set()
    failed = [{**o, "overrides": " ".join(x for x in o["overrides"] if x not in shared)}
              for o in outcomes if o["status"] != "complete"]
    return {"jobs": len(outcomes), "complete": len(outcomes) - len(failed), "failed": failed}


def describe(summary: dict, path: Path) -> list[str]:
    """The summary as the lines a sweep ends with."""
    lines = [f"sweep: {summary['complete']} of {summary['jobs']} jobs complete, {len(summary['failed'])} failed "
             f"({path})"]
    return lines + [f"failed: {job['job']} ({job['overrides']}): {job['error']}" for job in summary["failed"]]


# The summary of the last sweep this process ran, for run.py's exit status: read after Hydra returns, so that every
# other callback (the report) has run whatever this one found, and could add its own failure.
last_summary: dict = {}


def report_failed(message: str) -> None:
    """Fail the sweep's command because its report could not be built (ccup.callbacks.Report)."""
    log.error(f"error: {message}")
    last_summary["report_error"] = message


class Sweep(Callback):
    """A multirun's start and end (hydra.callbacks in conf/config.yaml): one name for all its jobs, and a summary,
    printed and in <sweep dir>/summary.json. The summary reads the job folders, not the launcher's returns: Hydra
    hands callbacks none, and a job killed by the scheduler leaves no return anyway."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # Resolved here, in the launching process, the `sweep` timestamp enters the resolver cache that Hydra copies
        # into every job's config: otherwise each job resolves ${now:} itself wherever hydra.sweep.dir does not
        # refer to it, and the jobs of one sweep land in different W&B groups.
        log.info(f"sweep {config.sweep}: records in {Path(config.results_dir) / 'records'}")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        summary = summarize([job_outcome(job_dir) for job_dir in job_dirs(sweep_dir)])
        path = storage.write_bytes(json.dumps(summary, indent=2).encode(), sweep_dir / "summary.json")
        print("\n".join(describe(summary, path)), flush=True)
        last_summary.clear()
        last_summary.update(summary, path=str(path))


def exit_status() -> str | None:
    """What run.py exits with: None (status 0) unless the sweep it ran lost jobs or its report, else an `error:` line
    (status 1)."""
    if failed := last_summary.get("failed"):
        jobs = ", ".join(job["job"] for job in failed)
        return f"error: {len(failed)} of {last_summary['jobs']} jobs failed ({jobs}): see {last_summary['path']}"
    if report_error := last_summary.get("report_error"):
        return f"error: {report_error}"
    return None
