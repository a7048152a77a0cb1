"""How a sweep holds together: its jobs share one name, each says how far the sweep has got, a
failed job fails alone (its record says why and the launcher goes on with the others), and the sweep
ends with a summary naming every failure, the report of its results, and an exit status that is
non-zero if a job or the report failed."""
import json
import logging
import time
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from ccup import storage
from ccup.errors import one_line
from ccup.record import read_record

log = logging.getLogger(__name__)

NO_RECORD = "no record: the job was killed, or its record could not be written (see its log)"
PROGRESS = "progress.json"  # in the sweep's folder: how many jobs it launches, and when it started


def planned_jobs(config: DictConfig) -> int | None:
    """How many jobs Hydra's basic sweeper launches for this multirun: its configured and
    command-line axes expanded as it expands them (later values of a key win, `glob(*)` reads the
    config folder), or one built on it. None for another sweeper: a search asks for its trials a few
    at a time."""
    if not built_on_basic(config.hydra.sweeper._target_):
        return None
    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    configured = [f"{key}={value}" for key, value in (config.hydra.sweeper.params or {}).items()]
    overrides = parser.parse_overrides([*configured, *config.hydra.overrides.task])
    return sum(len(batch) for batch in BasicSweeper.split_arguments(overrides, max_batch_size=None))


def built_on_basic(target: str) -> bool:
    """Whether the sweeper class `target` is Hydra's basic sweeper or a subclass of it. Classes are
    compared by qualified name: Hydra's plugin scan imports its plugin modules again, so that one
    class can be two objects."""
    basic = f"{BasicSweeper.__module__}.{BasicSweeper.__qualname__}"
    return any(f"{cls.__module__}.{cls.__qualname__}" == basic for cls in get_class(target).__mro__)


def progress_line(done: int, jobs: int, elapsed_s: float) -> str:
    """`sweep: 4 of 30 jobs done, about 13 min left`: the time left at the pace so far."""
    left = elapsed_s / done * (jobs - done)
    when = f"{left / 60:.0f} min" if left >= 90 else f"{left:.0f} s"
    return f"sweep: {done} of {jobs} jobs done" + (f", about {when} left" if done < jobs else "")


def read_plan(sweep_dir: Path) -> dict | None:
    """The plan this run of the sweep wrote as it started (jobs, start time); None where a sweeper
    plans no number of jobs."""
    path = sweep_dir / PROGRESS
    return json.loads(path.read_text()) if path.exists() else None


def job_dirs(sweep_dir: Path, jobs: int | None = None) -> list[Path]:
    """The output folders of a sweep's jobs: Hydra writes .hydra/ into each before its job starts,
    the job its record.json when it ends. Ordered by job number. Given the number of `jobs` this run
    launches, the folders numbered from there on are left out: an earlier, larger sweep of the same
    name left them, and Hydra numbers every run's jobs from 0."""
    found = {path.parent for pattern in (".hydra", "record.json")
             for path in sweep_dir.rglob(pattern)}
    found = {d for d in found if jobs is None or not d.name.isdigit() or int(d.name) < jobs}
    return sorted(found, key=lambda d: (int(d.name) if d.name.isdigit() else -1, str(d)))


def job_outcome(job_dir: Path) -> dict:
    """A job's overrides, status and error, from its folder; a job that left no record failed. A job
    that never started has no .hydra/ folder, only the record its launcher wrote, with the
    overrides."""
    hydra_overrides = job_dir / ".hydra" / "overrides.yaml"
    record = read_record(job_dir / "record.json") or {"status": "failed", "error": NO_RECORD}
    overrides = (OmegaConf.load(hydra_overrides) if hydra_overrides.exists()
                 else record.get("overrides", []))
    return {"job": str(job_dir), "overrides": list(overrides), "status": record["status"],
            "error": record.get("error")}


def summarize(outcomes: list[dict]) -> dict:
    """Counts, and every job that did not complete, named by the overrides that set it apart from
    the others."""
    shared = (set.intersection(*(set(o["overrides"]) for o in outcomes)) if len(outcomes) > 1
              else set())
    failed = [{**o, "overrides": " ".join(x for x in o["overrides"] if x not in shared)}
              for o in outcomes if o["status"] != "complete"]
    return {"jobs": len(outcomes), "complete": len(outcomes) - len(failed), "failed": failed}


def summary_lines(summary: dict, path: Path) -> list[str]:
    """The summary as the lines a sweep ends with."""
    lines = [f"sweep: {summary['complete']} of {summary['jobs']} jobs complete, "
             f"{len(summary['failed'])} failed ({path})"]
    return lines + [f"failed: {job['job']} ({job['overrides']}): {job['error']}"
                    for job in summary["failed"]]


class Sweep(Callback):
    """A multirun's start and end (hydra.callbacks in conf/config.yaml). At the start, one name for
    all its jobs; at the end, a summary (printed, and in <sweep dir>/summary.json), the report of
    its results_dir (`report`: tables and plots), and the command's exit status. The summary reads
    the job folders, not the launcher's returns: Hydra hands callbacks none, and a job killed by the
    scheduler leaves no return anyway."""

    def __init__(self, report: bool = True):
        self.report = report

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # The sweep's name, `${now:...}` by default, resolved once here, in the launching process:
        # Hydra copies this config's resolver cache into every job's config, so every job gets this
        # value (and one W&B group) instead of resolving the time itself wherever hydra.sweep.dir
        # does not refer to it.
        name = config.sweep
        log.info(f"sweep {name}: records in {Path(config.results_dir) / 'records'}")
        jobs = planned_jobs(config)
        path = Path(config.hydra.sweep.dir) / PROGRESS
        if jobs:
            storage.write_bytes(json.dumps({"jobs": jobs, "start": time.time()}).encode(), path)
        else:  # an earlier sweep's plan is not this one's
            path.unlink(missing_ok=True)

    def on_job_end(self, config: DictConfig, **kwargs: Any) -> None:
        """In the job's process, wherever it runs: how far the sweep has got, counting the job
        folders whose record was written since it started (a job skipped as complete writes one
        too)."""
        plan = read_plan(Path(config.hydra.sweep.dir))
        if config.hydra.mode.name != "MULTIRUN" or plan is None:
            return
        done = sum(record.stat().st_mtime >= plan["start"]
                   for record in Path(config.hydra.sweep.dir).glob("*/record.json"))
        if done:
            log.info(progress_line(done, plan["jobs"], time.time() - plan["start"]))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Raises SystemExit with one `error:` line when a job or the report failed: Hydra turns any
        other exception raised in a callback into a warning. (A callback listed before this one
        would not end: Hydra ends callbacks in reverse order, and this one exits.)"""
        sweep_dir = Path(config.hydra.sweep.dir)
        plan = read_plan(sweep_dir)
        summary = summarize([job_outcome(job_dir) for job_dir in
                             job_dirs(sweep_dir, plan["jobs"] if plan else None)])
        path = storage.write_bytes(json.dumps(summary, indent=2).encode(),
                                   sweep_dir / "summary.json")
        print("\n".join(summary_lines(summary, path)), flush=True)
        jobs_failed = self.failed_jobs(summary, path) if summary["failed"] else None
        report_failed = self.write_report(Path(config.results_dir)) if self.report else None
        if jobs_failed or report_failed:
            raise SystemExit(jobs_failed or report_failed)

    @staticmethod
    def failed_jobs(summary: dict, path: Path) -> str:
        jobs = ", ".join(job["job"] for job in summary["failed"])
        return (f"error: {len(summary['failed'])} of {summary['jobs']} jobs failed ({jobs}): "
                f"see {path}")

    @staticmethod
    def write_report(results: Path) -> str | None:
        """Builds the report; the `error:` line of a report that cannot be built, else None."""
        # pandas, scipy and matplotlib: for the sweep's end, not every job
        from ccup.report import write_report

        try:
            write_report(results)
        except Exception as exc:
            message = f"error: the report of {results} could not be built: {one_line(exc)}"
            log.error(message)
            return message
        log.info(f"report: {results / 'report.md'}")
        return None
