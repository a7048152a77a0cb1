"""Sweeps on a real SLURM scheduler: a single-node cluster on this machine (.ci/slurm), the suite's
launcher (hydra/launcher=slurm), a job cancelled with scancel, and the rerun that completes only
that job. The tests on the cluster carry the `cluster` mark: `make test-cluster` runs them (CI, as
root, after `make test`)."""
import json
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from helpers import CONF, ROOT, records, run_job, run_suite, start_suite
from hydra import compose as hydra_compose
from hydra import initialize_config_dir

pytestmark = pytest.mark.slow
SLURM = ROOT / ".ci" / "slurm"
# the script's own configuration: the tests use no other cluster
MARK = "# written by ccup-bench .ci/slurm"
# Three jobs of one array, one CPU each, two at a time: the third waits in the queue until one of
# the others ends. On the digits (599 test images): what is tested is the launcher, not what its
# jobs compute.
SWEEP = ("-m", "hydra/launcher=slurm", "hydra.launcher.gpus_per_node=0",
         "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1",
         "hydra.launcher.array_parallelism=2", "dataset=digits", "forget.classes=['3']",
         "alpha=0,0.5,1", "eval=[]", "logger=none")


def ours_is_up() -> bool:
    conf = Path("/etc/slurm/slurm.conf")
    if not conf.is_file() or MARK not in conf.read_text().splitlines():
        return False
    states = subprocess.run(["sinfo", "--noheader", "--format=%T"], capture_output=True, text=True)
    return states.returncode == 0 and states.stdout.strip() in ("idle", "mixed", "allocated")


@pytest.fixture(scope="module")
def cluster():
    """The cluster .ci/slurm runs, started here (and stopped afterwards) unless it is up; the tests
    skip, with the script's reason, where it cannot run one (no root, no apt-get, a cluster's own
    configuration)."""
    if ours_is_up():
        yield
        return
    started = subprocess.run([str(SLURM), "start"], capture_output=True, text=True, timeout=600)
    if started.returncode != 0:
        pytest.skip("no SLURM cluster: "
                    f"{(started.stderr.strip().splitlines() or ['.ci/slurm start failed'])[-1]}")
    yield
    subprocess.run([str(SLURM), "stop"], capture_output=True, timeout=120)


@pytest.mark.cluster
def test_a_cancelled_job_fails_alone_and_a_rerun_runs_only_it(cluster, tmp_path):
    """The third job is cancelled while it waits in the queue: it never starts, so only the launcher
    can say it failed. The sweep is not named, so its jobs, each a cluster job of its own, must
    share the launching process's timestamp."""
    sweep = start_suite(tmp_path, *SWEEP, named=False)
    submitted = tmp_path / "multirun" / ".submitit"
    while not (tasks := sorted(submitted.glob("*_2"))) and sweep.poll() is None:
        time.sleep(0.1)
    task = tasks[0].name
    subprocess.run(["scancel", task], check=True)
    assert sweep.wait(timeout=600) != 0
    output = (tmp_path / "command.log").read_text()
    assert "sweep: 2 of 3 jobs complete, 1 failed" in output, output
    assert (f"failed: {tmp_path / 'multirun' / '2'} (alpha=1): SLURM ended job {task} without a "
            "result (" in output)
    first = {r["config"]["alpha"]: r for r in records(tmp_path)}
    assert sorted(first) == [0, 0.5] and all(r["status"] == "complete" for r in first.values())
    assert len({r["config"]["sweep"] for r in first.values()}) == 1  # one timestamp, one W&B group
    assert (tmp_path / "results" / "report.md").exists()

    again = run_suite(tmp_path, *SWEEP, named=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "sweep: 3 of 3 jobs complete, 0 failed" in again.stdout
    after = {r["config"]["alpha"]: r for r in records(tmp_path)}
    # the others not run again
    assert after[1]["status"] == "complete" and all(after[a] == first[a] for a in first)
    for job in ("0", "1"):  # each job logs into its folder, on whichever node ran it
        assert "skipped: the record" in (tmp_path / "multirun" / job / "run.log").read_text()


@pytest.mark.cluster
def test_a_submission_slurm_refuses_ends_the_command_with_one_error_line(cluster, tmp_path):
    result = run_suite(tmp_path, *SWEEP, "hydra.launcher.partition=nosuch")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(
        "error: SLURM refused the sweep's submission (sbatch: error: invalid partition "
        "specified: nosuch")
    assert not (tmp_path / "results").exists()  # no job ran


def test_jobs_are_named_by_their_sweep():
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = hydra_compose("config", overrides=["hydra/launcher=slurm", "sweep=benchmark"],
                            return_hydra_config=True)
    assert cfg.hydra.launcher.name == "ccup-benchmark"


@pytest.fixture
def encoded(tmp_path_factory, tiny):
    """The embedded model's features of both datasets in the tests' cache, as an earlier job leaves
    them: the trials, started together, would each encode them (the cache's own tests are in
    test_features.py)."""
    run_job(tmp_path_factory.mktemp("encoded"), "dataset=digits", "forget.classes=['3']", "alpha=0",
            "logger=none", debug=False)


@pytest.mark.cluster
def test_a_search_runs_its_trials_side_by_side_as_slurm_jobs(cluster, tmp_path, encoded):
    """CCUP's search cut short (two trials at once, one digit, an oracle retrained for two steps) on
    the cluster: each trial a SLURM job whose method and oracle jobs leave their records, each
    trial's value in the study."""
    result = run_suite(tmp_path, "-m", "hparams_search=ccup", "hydra.sweeper.n_trials=2",
                       "search.models=[tiny]", "search.datasets=[digits]", "search.forget=['3']",
                       "search.oracle_settings.max_steps=2", *SWEEP[1:5])
    assert result.returncode == 0, result.stdout + result.stderr
    study = optuna.load_study(study_name="ccup", storage=f"sqlite:///{tmp_path}/results/optuna.db")
    assert [trial.state.name for trial in study.trials] == ["COMPLETE", "COMPLETE"]
    # the second trial: task 1 of an array
    assert len(list((tmp_path / "multirun" / ".submitit").glob("*_1"))) == 1
    for number, trial in enumerate(study.trials):
        summary = json.loads((tmp_path / "multirun" / str(number) / "record.json").read_text())
        # CCUP's job, the oracle's
        assert summary["value"] == trial.value and len(summary["records"]) == 2
    methods = sorted(record["choices"]["method"] for record in records(tmp_path))
    assert methods.count("ccup") == 2 and "retrain" in methods
