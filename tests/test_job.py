"""A job in-process (ccup.pipeline.run on a composed config): where it runs is an argument, and what
its record says of numbers that look wrong."""
import json
import os

import pytest
from helpers import compose, run_job
from hydra.core.hydra_config import HydraConfig

from ccup.job import Job, cpu_seconds, implausible, run

pytestmark = pytest.mark.slow
GARMENTS = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
            "ankle boot"]


def job(tmp_path, *overrides: str) -> dict:
    """The record of one job of the default config with `overrides` (helpers.run_job)."""
    run_job(tmp_path, *overrides)
    return json.loads((tmp_path / "outputs" / "record.json").read_text())


def test_a_class_list_out_of_the_labels_order_is_flagged(tmp_path, tiny, caplog):
    record = job(tmp_path, f"dataset.classnames=[{','.join(reversed(GARMENTS))}]")
    assert record["status"] == "complete" and record["metrics"]["forget/acc_before"] <= 10.0
    assert record["warnings"] == [
        f"forget/acc before unlearning is {record['metrics']['forget/acc_before']:.2f} %, at or "
        "below chance (10.00 % for 10 classes): check that the class names follow the order of the "
        "dataset's labels"]
    assert f"warning: {record['warnings'][0]}" in caplog.messages


def test_a_full_unlearning_that_left_the_class_is_flagged(tmp_path, tiny, caplog):
    record = job(tmp_path, "method.lam=0")  # no forgetting term: CCUP's map is the identity
    before = record["metrics"]["forget/acc_before"]
    assert record["metrics"]["forget/acc"] == pytest.approx(before) and before > 90
    assert record["warnings"] == [f"forget/acc did not fall at alpha = 1 ({before:.2f} %, "
                                  f"{before:.2f} % before): the method left the class as it was; "
                                  "check its settings"]
    assert f"warning: {record['warnings'][0]}" in caplog.messages


@pytest.mark.parametrize("metrics, alpha, warned", [
    ({"forget/acc_before": 80.0, "forget/acc": 0.5}, 1.0, 0),
    ({"forget/acc_before": 80.0, "forget/acc": 80.0}, 0.5, 0),  # part way: the class may stay
    ({"forget/acc_before": 80.0, "forget/acc": 81.0}, 1.0, 1),
    ({"forget/acc_before": 25.0, "forget/acc": 25.0}, 0.0, 1),  # at chance for 4 classes
    ({"forget/acc_before": 25.1, "forget/acc": 0.0}, 1.0, 0),
])
def test_what_counts_as_implausible(metrics, alpha, warned):
    assert len(implausible(metrics, alpha, classes=4)) == warned


def test_the_pipeline_reads_where_it_runs_from_its_arguments_not_from_hydra(tmp_path, tiny):
    cfg = compose("debug=default", "dataset=digits", "forget.classes=['3']",
                  f"results_dir={tmp_path}/results")
    HydraConfig.instance().cfg = None  # no Hydra running: a search's jobs and the Python API run so
    job = Job(tmp_path / "here", choices={"method": "ccup", "dataset": "digits"},
              overrides=["dataset=digits"])
    metrics = run(cfg, job)
    record = json.loads((tmp_path / "here" / "record.json").read_text())
    assert (record["status"] == "complete" and record["metrics"] == metrics
            and metrics["forget/acc"] < 10)
    # the job's own CPU, at most every core's for its wall time, and not its process's since it
    # started (the imports before it took seconds)
    cores = len(os.sched_getaffinity(0))
    assert 0 < metrics["time/job_cpu_s"] < min(cores * metrics["time/job_s"], cpu_seconds() / 2)
    assert (record["choices"] == {"method": "ccup", "dataset": "digits"}
            and record["overrides"] == ["dataset=digits"])
