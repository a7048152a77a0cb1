"""Progress where a person watches: Lightning's bar on a terminal, a line every 15 s in a log file,
from every Trainer the suite builds."""
import itertools
import logging
import math
import sys

import pytest
import pytorch_lightning as pl
from helpers import compose, fashion_task
from hydra.utils import instantiate
from pytorch_lightning.demos.boring_classes import BoringModel

from ccup import trainers
from ccup.progress import Progress, progress_line


def lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ccup.progress"]


def trainer(progress: Progress, **settings) -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", callbacks=[progress], logger=False,
                      enable_progress_bar=False, enable_checkpointing=False,
                      enable_model_summary=False, limit_val_batches=0, **settings)


def test_a_line_every_interval_with_the_time_elapsed_and_left(caplog):
    """A fake clock, 2.5 s a batch: a line every 6 batches (15 s), with the time left at the pace
    so far."""
    caplog.set_level(logging.INFO, logger="ccup.progress")
    clock = itertools.count(0, 2.5).__next__  # one call as training starts, one per batch
    trainer(Progress(every_s=15, clock=clock), max_steps=40).fit(BoringModel())
    # 6/40 at 15 s: 85 s left; 12/40 at 30 s: 70 s left; ...; 36/40 at 90 s: 10 s left
    assert lines(caplog) == [
        f"training: step {6 * k}/40, {15 * k} s elapsed, about {85 - 15 * (k - 1)} s left"
        for k in range(1, 7)]


def test_a_predict_loop_counts_its_batches(caplog):
    caplog.set_level(logging.INFO, logger="ccup.progress")
    clock = itertools.count(0, 10.0).__next__
    trainer(Progress(every_s=15, clock=clock)).predict(BoringModel())  # 64 batches of one
    assert lines(caplog)[:2] == ["encoding: batch 2/64, 20 s elapsed, about 620 s left",
                                 "encoding: batch 4/64, 40 s elapsed, about 600 s left"]
    assert len(lines(caplog)) == 32


def test_a_training_shorter_than_the_interval_is_silent(caplog):
    caplog.set_level(logging.INFO, logger="ccup.progress")
    clock = itertools.count(0, 1.0).__next__
    trainer(Progress(every_s=15, clock=clock), max_steps=14).fit(BoringModel())
    assert lines(caplog) == []


def test_without_a_bound_a_line_says_no_time_left():
    line = progress_line("training", "step", 12, math.inf, 31.4)
    assert line == "training: step 12, 31 s elapsed"


@pytest.mark.parametrize("terminal", [False, True])
def test_a_jobs_trainers_report_progress_off_a_terminal_only(random_tiny, tmp_path, monkeypatch,
                                                             caplog, terminal):
    """Training (a fine-tuning baseline) and encoding (the evaluator) with a line at every batch;
    on a terminal the bar shows progress instead (test_baselines.py checks the bar)."""
    caplog.set_level(logging.INFO, logger="ccup.progress")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: terminal)  # ccup.trainers.on_terminal
    monkeypatch.setattr(trainers, "PROGRESS_EVERY_S", 0.0)
    cfg = compose("method=finetune", "method.steps=3", f"cache_dir={tmp_path}")
    task = fashion_task(random_tiny)
    unlearned = instantiate(cfg.method)(random_tiny.model, task)
    features = instantiate(cfg.evaluator).features(random_tiny.model)
    # a tower of its own; the original's, into the cache
    for model in (unlearned, random_tiny.model):
        features(model, task.load_train())  # 512 images in 2 batches
    expected = [] if terminal else [*(f"training: step {k}/3" for k in (1, 2, 3)),
                                    *(f"encoding: batch {k}/2" for k in (1, 2, 1, 2))]
    assert [line.split(",")[0] for line in lines(caplog)] == expected
