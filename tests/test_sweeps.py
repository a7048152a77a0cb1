"""Sweeps that survive: one identity per job, skip-if-done, failures isolated and named, the cluster
launcher's bookkeeping, concurrent writers, and one clear error for each bad input at the edges
(full disk, read-only results, W&B refusing to start)."""
import errno
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import filelock
import hydra.types
import pytest
import submitit
from helpers import (
    CONF,
    compose,
    records,
    refuse_reads_under,
    run_job,
    start_suite,
    suite_in_process,
)
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.utils import JobStatus
from hydra.utils import instantiate
from hydra_plugins.ccup_launcher import queue_state
from omegaconf import OmegaConf

from ccup import storage, sweep
from ccup.errors import UserError, check_values
from ccup.job import end_failed
from ccup.loggers import wandb_run
from ccup.method import CCUP
from ccup.provenance import git_state
from ccup.record import NOT_IDENTITY, config_id, write_record

# --- Identity: what a job computes, not where it reports ------------------------------------------


def test_provenance_tells_the_code_of_a_commit_from_changed_code(tmp_path):
    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path,
                       check=True, capture_output=True)

    # no checkout
    assert git_state(tmp_path) == {"git_sha": None, "git_dirty": None, "git_diff": None}
    (tmp_path / "run.py").write_text("alpha = 1\n")
    git("init", "-q")
    git("add", "run.py")
    git("commit", "-qm", "code")
    clean = git_state(tmp_path)
    assert len(clean["git_sha"]) == 40 and clean["git_dirty"] is False and clean["git_diff"] is None
    (tmp_path / "results" / "records").mkdir(parents=True)
    (tmp_path / "results" / "records" / "job.json").write_text("{}")
    assert git_state(tmp_path) == clean  # the records a sweep writes are not a change of the code
    (tmp_path / "run.py").write_text("alpha = 2\n")
    edited = git_state(tmp_path)
    assert edited["git_dirty"] is True and edited["git_sha"] == clean["git_sha"]
    (tmp_path / "run.py").write_text("alpha = 3\n")
    assert git_state(tmp_path)["git_diff"] != edited["git_diff"]  # another change, another hash
    git("checkout", "run.py")
    (tmp_path / "helper.py").write_text("beta = 1\n")
    assert git_state(tmp_path)["git_dirty"] is True  # a new file is code the commit lacks


def scratch_checkout(tmp_path: Path) -> Path:
    """A git checkout with one committed file and, as cluster users have them, `data` and `.venv` as
    symlinks to directories outside it."""
    repo = tmp_path / "repo"
    elsewhere = tmp_path / "elsewhere"
    repo.mkdir()
    elsewhere.mkdir()
    (repo / "run.py").write_text("alpha = 1\n")
    (repo / "data").symlink_to(elsewhere, target_is_directory=True)
    (repo / ".venv").symlink_to(elsewhere, target_is_directory=True)
    for args in (["init", "-q"], ["add", "run.py"], ["commit", "-qm", "code"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
                       check=True, capture_output=True)
    return repo


def untracked(repo: Path) -> list[str]:
    return subprocess.run(["git", "ls-files", "--others", "--exclude-standard"], cwd=repo,
                          check=True, capture_output=True, text=True).stdout.split()


def test_provenance_survives_symlinked_data_and_venv_and_never_reads_a_large_untracked_file(
        tmp_path, monkeypatch):
    repo = scratch_checkout(tmp_path)
    assert untracked(repo) == [".venv", "data"]  # no .gitignore here: git lists both symlinks
    clean = git_state(repo)
    assert len(clean["git_sha"]) == 40 and clean["git_dirty"] is False and clean["git_diff"] is None
    big = repo / "checkpoint.ckpt"
    with big.open("wb") as f:
        # a sparse 1 GB file: no disk spent, but a whole read would still read 1 GB
        f.truncate(2**30)
    refuse_reads_under(monkeypatch, repo)
    dropped = git_state(repo)
    # an untracked file is a change
    assert dropped["git_sha"] == clean["git_sha"] and dropped["git_dirty"] is True
    assert len(dropped["git_diff"]) == 16 and git_state(repo) == dropped  # one tree, one hash
    mtime = big.stat().st_mtime_ns
    os.truncate(big, 2**30 + 1)
    # the same modification time: only the size tells the two files apart
    os.utime(big, ns=(mtime, mtime))
    assert git_state(repo)["git_diff"] != dropped["git_diff"]


def test_the_gitignore_ignores_data_and_venv_as_symlinks(tmp_path):
    repo = scratch_checkout(tmp_path)
    shutil.copy(Path(__file__).parents[1] / ".gitignore", repo / ".gitignore")
    assert untracked(repo) == [".gitignore"]  # neither symlink is listed
    ignored = subprocess.run(["git", "check-ignore", "data", ".venv"], cwd=repo,
                             capture_output=True, text=True)
    assert ignored.stdout.split() == ["data", ".venv"]


@pytest.mark.parametrize("override",
                         ["results_dir=/elsewhere", "cache_dir=/shared/cache", "data_dir=/data",
                          "sweep=another", "logger=none", "rerun=true",
                          "trainer.log_every_n_steps=5"])
def test_where_and_how_a_job_reports_is_not_its_identity(override):
    assert config_id(compose(override)) == config_id(compose())


@pytest.mark.parametrize("override",
                         ["alpha=0", "alpha=0.5", "method=nullspace", "forget=bag",
                          "method.lam=100", "test_images=test"])
def test_what_a_job_computes_is_its_identity(override):
    assert config_id(compose(override)) != config_id(compose())


@pytest.mark.parametrize("method, reads_seed",
                         [("ccup", False), ("retrain", False), ("mask", False),
                          ("finetune", True), ("leace", True), ("text_space", True)])
def test_the_seed_is_a_jobs_identity_only_where_its_method_reads_it(method, reads_seed):
    # CCUP, the oracle and the blocklist compute the same under every seed: three seeds of them are
    # one job.
    seeds = {config_id(compose(f"method={method}", f"seed={seed}")) for seed in (0, 1, 2)}
    assert len(seeds) == (3 if reads_seed else 1)


# --- Values no setting takes ----------------------------------------------------------------------


@pytest.mark.parametrize("override, message", [
    ("alpha=nan", "alpha=nan is not a number: give it a value"),
    ("method.lam=nan", "method.lam=nan is not a number"),
    ("alpha='0.5'", "alpha='0.5' is a number in quotes: write alpha=0.5 for the number"),
    ("method.mu='1e3'", "method.mu='1e3' is a number in quotes: write method.mu=1e3"),
    ("seed=1.5", "seed must be a whole number from 0 to 2**32 - 1, got 1.5"),
    ("seed=inf", "seed must be a whole number from 0 to 2**32 - 1, got inf"),
    ("seed=-1", "seed must be a whole number from 0 to 2**32 - 1, got -1"),
    ("seed=4294967296", "got 4294967296"),
])
def test_values_no_setting_takes_are_refused_by_name(override, message):
    config = OmegaConf.to_container(compose(override), resolve=True)
    with pytest.raises(UserError, match=re.escape(message)):
        check_values(config, skip=NOT_IDENTITY)


@pytest.mark.parametrize("overrides",
                         [["alpha=0", "seed=0"], ["seed=4294967295"], ["method.lam=inf"],
                          ["sweep='2024'"], ["dataset=digits", "forget.classes=['5']"]])
def test_zero_infinity_names_and_digit_classes_are_values(overrides):
    check_values(OmegaConf.to_container(compose(*overrides), resolve=True), skip=NOT_IDENTITY)


# --- Records and caches: whole or absent, also with concurrent writers ----------------------------


def test_a_full_disk_while_writing_keeps_the_old_record_and_leaves_no_partial_one(tmp_path,
                                                                                  monkeypatch):
    path = tmp_path / "records" / "job.json"
    write_record({"status": "complete", "metrics": {"forget/acc": 1.0}}, path)

    def full_disk(fd):  # where a network filesystem reports it: on flush
        raise OSError(28, os.strerror(28))

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(UserError, match=f"cannot write the record {path}: No space left on device: "
                                        "free space"):
        write_record({"status": "complete", "metrics": {"forget/acc": 2.0}}, path)
    assert json.loads(path.read_text())["metrics"] == {"forget/acc": 1.0}
    assert [p.name for p in path.parent.iterdir()] == ["job.json"]


def test_records_are_readable_by_the_other_users_of_a_shared_filesystem(tmp_path):
    (tmp_path / "plain.json").write_bytes(b"{}")
    path = storage.write_bytes(b"{}", tmp_path / "record.json")
    # as open() makes it, not mkstemp's 0o600
    assert path.stat().st_mode == (tmp_path / "plain.json").stat().st_mode


def write_many(path: Path, writer: int) -> None:
    for _ in range(20):
        storage.write_bytes(json.dumps({"writer": writer, "data": [writer] * 50_000}).encode(),
                            path)


def test_concurrent_writers_leave_one_whole_file_and_readers_never_see_a_partial_one(tmp_path):
    path = tmp_path / "shared" / "entry.json"
    storage.write_bytes(b'{"writer": -1, "data": []}', path)
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("fork")) as pool:
        writers = [pool.submit(write_many, path, writer) for writer in range(4)]
        reads = 0
        while not all(w.done() for w in writers):
            entry = json.loads(path.read_text())  # raises on a torn file
            assert set(entry["data"]) <= {entry["writer"]}
            reads += 1
        [w.result() for w in writers]
    assert reads > 0 and json.loads(path.read_text())["writer"] in range(4)
    assert [p.name for p in path.parent.iterdir()] == ["entry.json"]


def compute_slowly(path: Path, log: Path) -> tuple[int, bool]:
    """A cache entry that takes a second to compute, each computation a line of `log`."""
    def compute() -> int:
        with open(log, "a") as calls:
            calls.write(f"{os.getpid()}\n")
        time.sleep(1)
        return os.getpid()

    return storage.cached(path, compute, read=lambda p: int(p.read_text()),
                          write=lambda value, p: storage.write_bytes(str(value).encode(), p))


def test_jobs_after_one_cache_entry_at_once_compute_it_once(tmp_path):
    entry, log = tmp_path / "cache" / "weights", tmp_path / "computed"
    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("fork")) as pool:
        results = list(pool.map(compute_slowly, [entry] * 3, [log] * 3))
    (computer,) = map(int, log.read_text().split())
    # one computed it; the others waited and read its entry
    assert sorted(results, key=lambda r: r[1]) == [(computer, False), (computer, True),
                                                   (computer, True)]


def test_a_filesystem_without_file_locks_still_caches(tmp_path, monkeypatch, caplog):
    def unsupported(self, *args, **kwargs):
        raise NotImplementedError("FileSystem does not appear to support flock")

    monkeypatch.setattr(filelock.UnixFileLock, "acquire", unsupported)
    assert compute_slowly(tmp_path / "weights", tmp_path / "computed") == (os.getpid(), False)
    assert compute_slowly(tmp_path / "weights", tmp_path / "computed") == (os.getpid(), True)
    assert "computing it unlocked" in caplog.text


# --- The end of a failed job and of a sweep -------------------------------------------------------


def test_a_failed_job_ends_alone_with_one_line_and_in_a_sweep_lets_the_others_run(caplog):
    bug, bad_input = RuntimeError("boom"), UserError("alpha must lie in [0, 1]\n(0 = original)")
    assert end_failed(bug, sweeping=True) is None
    assert end_failed(bad_input, sweeping=True) is None
    assert [r.getMessage() for r in caplog.records] == [
        "error: RuntimeError: boom", "error: alpha must lie in [0, 1] (0 = original)"]
    # a bug keeps its traceback
    assert caplog.records[0].exc_info is not None and caplog.records[1].exc_info is None
    with pytest.raises(SystemExit, match=r"^error: alpha must lie in \[0, 1\] \(0 = original\)$"):
        end_failed(bad_input, sweeping=False)
    with pytest.raises(RuntimeError, match="boom"):
        end_failed(bug, sweeping=False)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C stops a sweep
        end_failed(KeyboardInterrupt(), sweeping=True)


def fake_job(sweep_dir: Path, num: int, overrides: list[str], record: dict | None) -> None:
    (sweep_dir / str(num) / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides), sweep_dir / str(num) / ".hydra" / "overrides.yaml")
    if record is not None:
        write_record(record, sweep_dir / str(num) / "record.json")


def test_the_summary_names_failed_and_killed_jobs_and_sets_the_exit_status(tmp_path, capsys):
    fake_job(tmp_path, 0, ["alpha=0", "logger=none"], {"status": "complete", "metrics": {}})
    fake_job(tmp_path, 1, ["alpha=2", "logger=none"],
             {"status": "failed", "error": "alpha must lie in [0, 1]"})
    fake_job(tmp_path, 10, ["alpha=1", "logger=none"], None)  # killed before its record
    with pytest.raises(SystemExit) as exit_:
        sweep.Sweep(report=False).on_multirun_end(
            OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["jobs"], summary["complete"]) == (3, 1)
    assert [(Path(j["job"]).name, j["overrides"], j["error"]) for j in summary["failed"]] == [
        ("1", "alpha=2", "alpha must lie in [0, 1]"), ("10", "alpha=1", sweep.NO_RECORD)]
    assert capsys.readouterr().out.splitlines()[:2] == [
        f"sweep: 1 of 3 jobs complete, 2 failed ({tmp_path / 'summary.json'})",
        f"failed: {tmp_path / '1'} (alpha=2): alpha must lie in [0, 1]"]
    assert exit_.value.code == (f"error: 2 of 3 jobs failed ({tmp_path / '1'}, "
                                f"{tmp_path / '10'}): see {tmp_path / 'summary.json'}")


def test_the_summary_leaves_out_the_folders_an_earlier_larger_sweep_of_that_name_left(tmp_path):
    fake_job(tmp_path, 0, ["alpha=0"], {"status": "complete", "metrics": {}})
    fake_job(tmp_path, 1, ["alpha=1"], {"status": "complete", "metrics": {}})
    fake_job(tmp_path, 2, ["alpha=0.5"], None)  # the earlier run's, killed
    (tmp_path / sweep.PROGRESS).write_text(json.dumps({"jobs": 2, "start": 0.0}))
    assert sweep.Sweep(report=False).on_multirun_end(
        OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})) is None
    assert json.loads((tmp_path / "summary.json").read_text())["jobs"] == 2


def test_a_sweep_without_failures_exits_zero(tmp_path):
    fake_job(tmp_path, 0, ["alpha=0"], {"status": "complete", "metrics": {}})
    assert sweep.Sweep(report=False).on_multirun_end(
        OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})) is None  # no SystemExit
    assert json.loads((tmp_path / "summary.json").read_text())["complete"] == 1


# --- Launchers and multi-GPU training: the configs compose into the libraries' own objects --------


def hydra_config(*overrides: str):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return hydra_compose("config", overrides=list(overrides), return_hydra_config=True)


def test_the_slurm_launcher_submits_one_array_with_our_settings(tmp_path, monkeypatch):
    """The suite's SLURM launcher (Hydra's submitit launcher, waiting for every job), built from
    conf/hydra/launcher/slurm.yaml, hands submitit's SLURM executor our settings; its sbatch script
    is rendered here instead of submitted (a fake `srun` passes submitit's check).
    tests/test_slurm.py submits to a real cluster."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "srun").write_text("#!/bin/sh\n")
    (tmp_path / "bin" / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    cfg = hydra_config("hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                       "hydra.launcher.gpus_per_node=2", "hydra.launcher.timeout_min=30",
                       "hydra.launcher.array_parallelism=4",
                       f"hydra.sweep.dir={tmp_path / 'multirun'}")
    launcher = instantiate(cfg.hydra.launcher)
    # by name: Hydra's plugin discovery imports the plugin module a second time, so its classes are
    # other objects
    assert (f"{type(launcher).__module__}.{type(launcher).__name__}"
            == "hydra_plugins.ccup_launcher.SlurmLauncher")
    launcher.setup(hydra_context=None, task_function=None, config=cfg)
    submitted = []

    # instead of sbatch: keep the executor, and stop before waiting for the jobs
    def submit(executor, *args):
        submitted.append(executor)
        raise InterruptedError

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", submit)
    with pytest.raises(InterruptedError):
        launcher.launch([[f"seed={seed}"] for seed in range(6)], initial_job_idx=0)
    (executor,) = submitted
    slurm = executor._executor
    # what submitit sets when it submits the six jobs as one array
    slurm.parameters["map_count"] = 6
    script = slurm._make_submission_file_text("python -m submitit.core._submit", "0")
    for line in ["#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=2", "#SBATCH --time=30",
                 "#SBATCH --array=0-5%4", "#SBATCH --cpus-per-task=8", "#SBATCH --mem=32GB",
                 "#SBATCH --ntasks-per-node=1"]:
        assert line in script.splitlines(), line


def fake_squeue(tmp_path: Path, monkeypatch, script: str) -> None:
    """`squeue` on PATH as a shell script: the queue as the launcher sees it, without SLURM."""
    (tmp_path / "bin").mkdir(exist_ok=True)
    (tmp_path / "bin" / "squeue").write_text(f"#!/bin/sh\n{script}\n")
    (tmp_path / "bin" / "squeue").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.parametrize("script, state", [
    ("echo RUNNING", "RUNNING"), ("echo CANCELLED", "CANCELLED"),
    ("true", None),  # ended, and forgotten by the queue
    # purged from the controller
    ("echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1", None),
])
def test_the_launcher_reads_a_jobs_state_from_the_queue(tmp_path, monkeypatch, script, state):
    fake_squeue(tmp_path, monkeypatch, script)
    assert queue_state("7_1") == state


def lost_job(tmp_path: Path, monkeypatch, squeue: str, result: Callable | None = None,
             own_record: dict | None = None):
    """The suite's SLURM launcher settling job 7_1 (job number 1) of a sweep, the queue answering
    `squeue`; the job has a result pickle only with `result`, what submitit's results() makes of it,
    and `own_record` in its folder."""
    fake_squeue(tmp_path, monkeypatch, squeue)
    launcher = instantiate(hydra_config("hydra/launcher=slurm").hydra.launcher)
    launcher.poll_s, launcher.patience_s = 0.01, 0.05
    monkeypatch.setattr(launcher, "job_dir", lambda overrides, number: tmp_path / str(number))
    (tmp_path / "1").mkdir()
    if own_record is not None:
        write_record(own_record, tmp_path / "1" / "record.json")
    pickle = tmp_path / "7_1_result.pkl"
    if result is not None:
        pickle.write_bytes(b"")
    job = SimpleNamespace(job_id="7_1", results=result, paths=SimpleNamespace(
        result_pickle=pickle, stderr=tmp_path / "7_1_log.err"))
    return launcher.settle(job, ["alpha=1"], 1), tmp_path / "1" / "record.json"


@pytest.mark.parametrize("squeue, error", [
    ("echo CANCELLED", "SLURM ended job 7_1 without a result (CANCELLED: scancel, a failed node or "
                       "the time limit)"),
    ("echo 'slurm_load_jobs error: Unable to contact slurm controller' >&2; exit 1",
     "SLURM ended job 7_1 without a result (the queue did not answer for 0 s: slurm_load_jobs "
     "error: Unable to contact slurm controller"),
])
def test_a_job_slurm_ended_without_a_result_gets_a_failed_record_and_the_sweep_goes_on(
        tmp_path, monkeypatch, squeue, error):
    returned, record = lost_job(tmp_path, monkeypatch, squeue)
    # the sweeper goes on
    assert returned.status == JobStatus.COMPLETED and returned.return_value is None
    written = json.loads(record.read_text())
    assert written["status"] == "failed" and written["error"].startswith(error)
    assert written["overrides"] == ["alpha=1"]  # for the summary, whether or not the job started


def test_a_job_whose_process_failed_gets_a_failed_record(tmp_path, monkeypatch):
    def failed():
        raise RuntimeError("Job (task=0) failed during processing with trace:\nTraceback ...")

    _, record = lost_job(tmp_path, monkeypatch, "echo COMPLETED", failed)
    assert json.loads(record.read_text())["error"].startswith(
        "SLURM job 7_1 failed: Job (task=0) failed during processing with trace:; its log:")


def test_a_record_the_job_wrote_before_slurm_stopped_it_is_kept(tmp_path, monkeypatch):
    own = {"status": "complete", "metrics": {}}
    _, record = lost_job(tmp_path, monkeypatch, "echo CANCELLED", own_record=own)
    assert json.loads(record.read_text()) == own


# --- End to end: sweeps that fail, are killed, run again, in parallel -----------------------------

# The first job fails (alpha outside [0, 1]), the three others complete; on the digits (599 test
# images), with no evaluation beyond accuracy (eval=[]): what is tested here is how jobs start and
# end.
SWEEP = ("-m", "alpha=2,0,0.5,1", "dataset=digits", "forget.classes=['3']", "eval=[]")


def by_id(tmp_path: Path) -> dict[str, dict]:
    return {record["id"]: record for record in records(tmp_path)}


def outcome(record: dict) -> dict:
    """What a record says about the computation: not its paths, loggers or timings."""
    return {"status": record["status"], "error": record.get("error"),
            "choices": {k: v for k, v in record["choices"].items() if k not in NOT_IDENTITY},
            "config": {k: v for k, v in record["config"].items() if k not in NOT_IDENTITY},
            "metrics": {k: v for k, v in record.get("metrics", {}).items()
                        if not k.startswith(("time/", "memory/"))}}


@pytest.fixture(scope="module")
def failing_sweep(tmp_path_factory, tiny):
    """One uninterrupted sweep with a failing first job, mirrored to offline W&B runs, run in this
    process through Hydra (its sweeper, launcher and callback are the subject)."""
    tmp_path = tmp_path_factory.mktemp("failing")
    return tmp_path, suite_in_process(tmp_path, *SWEEP)


@pytest.mark.slow
def test_a_failing_job_does_not_stop_the_sweep_and_is_named(failing_sweep):
    tmp_path, result = failing_sweep
    by_alpha = {r["config"]["alpha"]: r for r in by_id(tmp_path).values()}
    assert {alpha: r["status"] for alpha, r in by_alpha.items()} == {2: "failed", 0: "complete",
                                                                     0.5: "complete", 1: "complete"}
    assert by_alpha[2]["error"].startswith("alpha must lie in [0, 1]")
    job = tmp_path / "multirun" / "0"
    assert (f"sweep: 3 of 4 jobs complete, 1 failed ({tmp_path / 'multirun' / 'summary.json'})"
            in result.stdout)
    assert f"failed: {job} (alpha=2): alpha must lie in [0, 1]" in result.stdout
    # the command's last line, and status 1
    assert result.exit.startswith(f"error: 1 of 4 jobs failed ({job})")
    assert "error: alpha must lie in [0, 1]" in (job / "run.log").read_text()


@pytest.mark.slow
def test_the_failed_job_marks_its_wandb_run_failed(failing_sweep):
    tmp_path, _ = failing_sweep
    runs = [wandb_run(d) for d in (tmp_path / "results" / "wandb").glob("offline-run-*")]
    assert sorted((run["config"]["alpha_str"], run["exit_code"] != 0) for run in runs) == [
        ("0", False), ("0.5", False), ("1", False), ("2", True)]


@pytest.mark.slow
def test_a_killed_sweep_run_again_completes_only_the_missing_jobs(tmp_path, failing_sweep):
    job = start_suite(tmp_path, *SWEEP, "logger=none")
    third = tmp_path / "multirun" / "2" / ".hydra"
    while not third.exists() and job.poll() is None:
        time.sleep(0.01)
    job.kill()  # SIGKILL, in the middle of the third job (alpha=0.5)
    job.wait()
    before = {path.stem: path.read_bytes() for path in (tmp_path / "results" / "records").iterdir()}
    # no partial record
    assert sorted(json.loads(text)["config"]["alpha"] for text in before.values()) == [0, 2]

    # run again: no need for a process of its own
    result = suite_in_process(tmp_path, *SWEEP, "logger=none")
    skipped = re.findall(r"skipped: the record (\S+) is complete", result.stdout)
    complete_before = [id for id, text in before.items()
                       if json.loads(text)["status"] == "complete"]
    # alpha=0 only; alpha=2 failed, so it runs again
    assert [Path(path).stem for path in skipped] == complete_before
    after = by_id(tmp_path)
    assert all((tmp_path / "results" / "records" / f"{id}.json").read_bytes() == before[id]
               for id in complete_before)
    reference = by_id(failing_sweep[0])
    assert ({id: outcome(r) for id, r in after.items()}
            == {id: outcome(r) for id, r in reference.items()})

    forced = suite_in_process(tmp_path, "alpha=0", *SWEEP[2:], "rerun=true", "logger=none")
    assert forced.exit is None and "skipped" not in forced.stdout
    assert (by_id(tmp_path)[complete_before[0]]["metrics"]["time/job_s"]
            != after[complete_before[0]]["metrics"]["time/job_s"])


def test_an_exception_in_a_method_fails_only_its_job(tmp_path, tiny, monkeypatch, caplog):
    """A bug, not a bad input: the method raises a RuntimeError at alpha = 0.5. As a job of a sweep,
    it is recorded as failed and logged with its traceback, and the next job runs."""
    call = CCUP.__call__

    def buggy(self, model, task):
        if self.alpha == 0.5:
            raise RuntimeError("a bug")
        return call(self, model, task)

    monkeypatch.setattr(CCUP, "__call__", buggy)
    for alpha in (0.5, 1):
        run_job(tmp_path / str(alpha), "method=nullspace", f"alpha={alpha}", sweeping=True)
    failed, complete = (records(tmp_path / str(alpha))[0] for alpha in (0.5, 1))
    assert failed["status"] == "failed" and failed["error"] == "RuntimeError: a bug"
    assert complete["status"] == "complete"
    (logged,) = [r for r in caplog.records if r.levelname == "ERROR"]
    # a bug keeps its traceback
    assert logged.getMessage() == "error: RuntimeError: a bug" and logged.exc_info


@pytest.mark.slow
def test_wandb_refusing_to_start_fails_its_jobs_not_the_sweep(tmp_path):
    result = suite_in_process(tmp_path, "-m", "alpha=0,1", "logger.wandb.mode=bogus")
    assert [r["status"] for r in by_id(tmp_path).values()] == ["failed", "failed"]
    assert all(r["error"].startswith("WandbLogger could not start:")
               and r["error"].endswith("fix its settings (conf/logger/) or run with logger=none")
               for r in by_id(tmp_path).values())
    assert result.exit is not None and "sweep: 0 of 2 jobs complete, 2 failed" in result.stdout


# --- Bad input at the edges of the filesystem: one clear error, no partial record -----------------
# Faults the OS cannot be asked for here (root ignores read-only permissions; a full disk), patched
# into the calls that write under the results folder.

def refused_under(folder: Path, call: Callable, code: int) -> Callable:
    """`call(path, ...)` that fails with OSError `code` for any path under `folder`."""
    def refused(path, *args, **kwargs):
        if os.path.abspath(path).startswith(str(folder)):
            raise OSError(code, os.strerror(code), path)
        return call(path, *args, **kwargs)
    return refused


def test_a_read_only_results_dir_is_refused_before_the_job_runs(tmp_path, monkeypatch, caplog):
    for name in ("open", "mkdir"):
        monkeypatch.setattr(os, name,
                            refused_under(tmp_path / "results", getattr(os, name), errno.EROFS))
    with pytest.raises(SystemExit) as end:
        run_job(tmp_path)
    assert re.fullmatch(rf"error: cannot write the record {tmp_path}/results/records/\w+\.json: "
                        r"Read-only file system: free space .* or write the results elsewhere with "
                        r"results_dir=DIR", str(end.value))
    assert not (tmp_path / "results").exists() and "Seed set" not in caplog.text  # nothing ran


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(),
                    reason="the fault finds file names in /proc")
def test_a_full_disk_while_writing_the_record_is_one_error_and_no_record(tmp_path, tiny,
                                                                         monkeypatch):
    sync = os.fsync

    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(tmp_path / "results")):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        sync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(SystemExit) as end:
        run_job(tmp_path)
    assert re.fullmatch(rf"error: cannot write the record {tmp_path}/results/records/\w+\.json: "
                        r"No space left on device: .*", str(end.value))
    assert list((tmp_path / "results" / "records").iterdir()) == []
    assert not (tmp_path / "outputs" / "record.json").exists()


# --- progress -------------------------------------------------------------------------------------
def test_a_sweep_plans_as_many_jobs_as_its_sweeper_launches():
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = hydra_compose("config", overrides=["experiment=compare"], return_hydra_config=True)
        methods = len(list((CONF / "method").glob("*.yaml")))
        assert sweep.planned_jobs(cfg) == 3 * methods  # every method at alpha = 0, 0.5, 1
        # the command line's alpha replaces the config's
        cfg.hydra.overrides.task.extend(["alpha=0,1", "seed=0,1,2"])
        assert sweep.planned_jobs(cfg) == 2 * methods * 3
        # a sweeper built on the basic one expands as it does, whatever its name
        cfg.hydra.sweeper._target_ = f"{__name__}.Expanding"
        assert sweep.planned_jobs(cfg) == 2 * methods * 3
        search = hydra_compose("config", overrides=["hparams_search=ccup"],
                               return_hydra_config=True)
        assert sweep.planned_jobs(search) is None  # Optuna asks for its trials a few at a time


class Expanding(BasicSweeper):
    """A sweeper of one's own, on Hydra's basic one."""


def test_each_job_says_how_far_its_sweep_has_got(tmp_path, caplog):
    cfg = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}, "mode": "MULTIRUN"}})
    cfg.hydra.mode = hydra.types.RunMode.MULTIRUN
    (tmp_path / sweep.PROGRESS).write_text(json.dumps({"jobs": 4, "start": time.time() - 60}))
    for job in ("0", "1"):
        (tmp_path / job).mkdir()
        (tmp_path / job / "record.json").write_text("{}")
    os.utime(tmp_path / "1" / "record.json", (0, 0))  # a record of an earlier run of the same sweep
    caplog.set_level("INFO", logger="ccup.sweep")
    sweep.Sweep().on_job_end(cfg)
    assert caplog.messages == ["sweep: 1 of 4 jobs done, about 3 min left"]
    assert sweep.progress_line(4, 4, 100.0) == "sweep: 4 of 4 jobs done"
    assert sweep.progress_line(2, 3, 30.0) == "sweep: 2 of 3 jobs done, about 15 s left"
