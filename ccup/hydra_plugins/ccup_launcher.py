"""Hydra's submitit launcher for SLURM, waiting for every job of a sweep (`hydra/launcher=slurm`).

A Hydra plugin: Hydra takes launchers only from the `hydra_plugins` namespace package, so this file
is installed as `hydra_plugins.ccup_launcher` (pyproject.toml) and keeps its imports light, since
Hydra imports every plugin at start.

SLURM may end a job without a result: `scancel`, a failed node, the time limit. Hydra's launcher
then raises at the first such job, leaves the others running unwatched and the sweep without its
summary; and without SLURM's accounting (`sacct`) submitit never learns that such a job ended. This
launcher asks the queue (`squeue`) instead, which every SLURM cluster answers, writes a failed
record into the folder of each job that ended without one, and lets the sweep end with its summary,
its report and a non-zero exit status.
"""
import contextlib
import io
import json
import logging
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import (
    SlurmLauncher as HydraSlurmLauncher,
)
from omegaconf import OmegaConf, open_dict

log = logging.getLogger(__name__)

# What squeue calls a job that has not ended; any other state, or none (the queue forgot it), is an
# end.
ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING",
          "SIGNALING", "STAGE_OUT", "STOPPED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD",
          "SPECIAL_EXIT"}


class SlurmLauncher(HydraSlurmLauncher):
    """Submits the sweep as one job array, as Hydra's launcher does, then waits for each job's
    result or its end."""

    poll_s = 2.0  # how often the queue is asked about a job without a result
    # how long a queue that does not answer is asked again before the job counts as lost
    patience_s = 600.0

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> list[JobReturn]:
        import submitit  # as Hydra's launcher: plugin discovery stays fast

        params = dict(self.params)
        executor = submitit.AutoExecutor(cluster="slurm", folder=params.pop("submitit_folder"),
                                         slurm_max_num_timeout=params.pop("max_num_timeout"))
        # the rest are SLURM's own, prefixed
        shared = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{key if key in shared else f"slurm_{key}": value
                                      for key, value in params.items()})
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        numbers = range(initial_job_idx, initial_job_idx + len(job_overrides))
        for number, overrides in zip(numbers, job_overrides, strict=True):
            log.info(f"\t#{number} : {' '.join(filter_overrides(overrides))}")
        try:
            # submitit prints sbatch's complaint, then raises it
            with contextlib.redirect_stderr(io.StringIO()):
                jobs = executor.map_array(self, [list(o) for o in job_overrides],
                                          ["hydra.sweep.dir"] * len(job_overrides), list(numbers),
                                          [f"job_id_for_{n}" for n in numbers],
                                          [Singleton.get_state()] * len(job_overrides))
        except (submitit.core.utils.FailedJobError,
                submitit.core.utils.FailedSubmissionError) as exc:
            from ccup.errors import UserError

            said = " ".join(str(exc).split()) or type(exc).__name__
            raise UserError(f"SLURM refused the sweep's submission ({said}): check "
                            "hydra.launcher.partition, account, qos and gres against `sinfo` and "
                            "your allocation") from exc
        return [self.settle(job, list(overrides), number)
                for job, overrides, number in zip(jobs, job_overrides, numbers, strict=True)]

    def settle(self, job, overrides: list[str], number: int) -> JobReturn:
        """The job's return once it has one. For a job that ended without one (SLURM stopped it, or
        its process died outside the suite's own handling), a failed record in its folder unless the
        job wrote its own, and an empty return: Hydra's sweepers stop at a failed return, and the
        record is what says the job failed."""
        state = self.wait(job)
        error = (f"SLURM ended job {job.job_id} without a result ({state}: scancel, a failed node "
                 f"or the time limit); its log: {job.paths.stderr}")
        if job.paths.result_pickle.exists():
            try:
                return job.results()[0]
            # submitit's FailedJobError: the job's process raised past the suite's handling
            except Exception as exc:
                first_line = str(exc).strip().splitlines()[0]
                error = f"SLURM job {job.job_id} failed: {first_line}; its log: {job.paths.stderr}"
        log.error(f"error: {error}")
        path = self.job_dir(overrides, number) / "record.json"
        if not path.exists():
            # here, not at the top: Hydra imports every plugin module at every start
            from ccup import storage

            storage.write_bytes(json.dumps({"status": "failed", "error": error,
                                            "overrides": overrides}).encode(), path)
        return JobReturn(overrides=overrides, status=JobStatus.COMPLETED)

    def wait(self, job) -> str:
        """Until the job has a result or has left the queue; what the queue last said of it. A queue
        that cannot be asked (a busy or restarting controller) is asked again, for up to
        `patience_s` seconds in a row."""
        state = "RUNNING"
        unanswered = 0.0
        while not job.paths.result_pickle.exists() and state in ACTIVE:
            time.sleep(self.poll_s)
            try:
                state, unanswered = queue_state(job.job_id), 0.0
            except QueueUnanswered as exc:
                unanswered += self.poll_s
                if unanswered > self.patience_s:
                    return f"the queue did not answer for {self.patience_s:.0f} s: {exc}"
        if not job.paths.result_pickle.exists():
            # written just before the job left the queue, maybe not yet seen here
            time.sleep(self.poll_s)
        return state or "gone from the queue"

    def job_dir(self, overrides: list[str], number: int) -> Path:
        """The job's output folder, as the job itself would have resolved it."""
        config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(config.hydra.job):
            config.hydra.job.num = number
        return Path(config.hydra.sweep.dir) / str(config.hydra.sweep.subdir)


class QueueUnanswered(RuntimeError):
    """squeue failed for another reason than a job it no longer knows."""


def queue_state(job_id: str) -> str | None:
    """The job's state in SLURM's queue (`squeue`, which every SLURM cluster answers, with or
    without accounting), None once the queue no longer knows it."""
    result = subprocess.run(["squeue", "--noheader", "--states=all", "--format=%T",
                             f"--jobs={job_id}"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        if "Invalid job id" in result.stderr:
            return None
        raise QueueUnanswered(" ".join(result.stderr.split())
                              or f"squeue exited with {result.returncode}")
    return result.stdout.split()[0] if result.stdout.split() else None
