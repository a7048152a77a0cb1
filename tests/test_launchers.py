"""The parallel launchers for real, each job a process of its own: Hydra's joblib launcher and
Lightning's DDP on two CPU processes (test_slurm.py runs the SLURM launcher on a real cluster)."""
import json
from functools import partial

import pytest
import torch
from helpers import compose, records, run_suite
from hydra.utils import instantiate
from pytorch_lightning.plugins.environments import LightningEnvironment
from pytorch_lightning.strategies import DDPStrategy

from ccup.method import build
from ccup.task import UnlearnTask

pytestmark = pytest.mark.slow


def test_trainer_ddp_trains_on_spawned_processes_of_the_job():
    method = build(compose("method=finetune", "trainer=ddp").method)
    trainer = method.trainer(max_steps=1, accelerator="cpu", devices=2)
    assert isinstance(trainer.strategy, DDPStrategy) and trainer.strategy._start_method == "spawn"
    assert isinstance(trainer.strategy.cluster_environment, LightningEnvironment)
    assert (trainer.num_devices, trainer.world_size) == (2, 2)


def test_ddp_trains_a_baseline_on_two_processes_and_hands_the_weights_back(tiny, tmp_path):
    """trainer=ddp on two CPU processes (gloo): the spawned ranks train, the job gets rank 0's
    weights."""
    cfg = compose("method=finetune", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                      "method.steps=2", f"method.cache_dir={tmp_path}")
    data = instantiate(cfg.dataset)
    train = partial(data.load, split="train", transform=tiny.preprocess)
    task = UnlearnTask.of(tiny, data.classnames, data.templates, cfg.forget.classes, train)
    unlearned = build(cfg.method)(tiny.model, task)
    before, after = tiny.model.state_dict(), unlearned.state_dict()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    # trained, and only what it declares
    assert changed and all(name.startswith("visual.") for name in changed)


def test_4_jobs_on_2_joblib_workers_write_4_complete_records(tmp_path, tiny):
    """On the digits (599 test images): what is tested is the launcher, not what its jobs
    compute."""
    result = run_suite(tmp_path, "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                       "alpha=0,0.25,0.5,1", "dataset=digits", "forget.classes=['3']", "eval=[]",
                       "logger=none", f"evaluator.cache.root={tmp_path}/features")
    assert result.returncode == 0, result.stderr
    found = {record["id"]: record for record in records(tmp_path)}
    assert sorted(r["config"]["alpha"] for r in found.values()) == [0, 0.25, 0.5, 1]
    assert all(r["status"] == "complete" for r in found.values())
    copies = [json.loads(p.read_text())["id"]
              for p in (tmp_path / "multirun").glob("*/record.json")]
    assert sorted(copies) == sorted(found)  # one job folder per job, none shared
    assert "sweep: 4 of 4 jobs complete, 0 failed" in result.stdout
    # The first jobs, in parallel, all need the test set's features: one encodes them while the
    # other waits for its lock; each cache entry is whole, and no temporary file is left.
    entries = [path for path in (tmp_path / "features").iterdir() if path.suffix != ".lock"]
    assert entries and all(torch.load(entry, weights_only=True)["features"].ndim == 2
                           for entry in entries)
    assert not list(tmp_path.rglob("*.tmp"))
