"""The pipeline every job of the suite runs: load the model and the data, unlearn, evaluate, export.
The command line (run.py) runs it for each job Hydra launches and a search (ccup.search) for each
job of its trials, both as ccup.job.run, which records it; the Python API (ccup.api) runs `unlearn`,
the same method call on a model of its own."""
import time
from functools import partial

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from ccup import quiet_lightning
from ccup.classnames import by_class_name
from ccup.datasets import half
from ccup.evals import check_config
from ccup.job import Job
from ccup.loggers import handed, log_model
from ccup.method import Method, build
from ccup.record import manifest
from ccup.task import UnlearnTask


def run(cfg: DictConfig, job: Job, loggers: list) -> dict:
    """One unlearning job's metrics; ccup.job.run wraps it: its record, its loggers, its checks."""
    # Lightning sets its loggers to INFO as it is imported, after Hydra configured them
    quiet_lightning()
    pl.seed_everything(cfg.seed, workers=True)
    # a folder dataset's by folder name too
    forget = by_class_name(cfg.forget.classes, cfg.dataset.get("names"))
    # first: instantiate resolves cfg in place
    about = manifest(cfg, job.choices["method"], forget) if cfg.export else None
    # before instantiate: an eval file written flat would be built as something else
    check_config(cfg.eval)
    # First: they refuse bad settings. A method that trains logs its curves to the job's loggers.
    method = build(cfg.method, **handed(cfg.method, loggers))
    evaluator = instantiate(cfg.evaluator)
    clip, data = instantiate(cfg.model), instantiate(cfg.dataset)
    # Before the task: missing data is told first. A search scores the validation half, a benchmark
    # the test half.
    test_set = half(data.load(split=data.split, transform=clip.preprocess), cfg.test_images)
    train = partial(data.load, split="train", transform=clip.preprocess)
    task = UnlearnTask.of(clip, data.classnames, data.templates, forget, train)
    unlearned, cost = unlearn(method, clip.model, task)
    metrics = evaluator(clip.model, unlearned, task, test_set)
    if cfg.export:
        clip.export(unlearned, clip.name, job.export_dir, about)
        log_model(loggers, job.export_dir)
    return {**cost, **metrics}


def unlearn(method: Method, model: torch.nn.Module,
            task: UnlearnTask) -> tuple[torch.nn.Module, dict]:
    """`method` run on `model` for `task`: the unlearned model, and its cost, `time/unlearn_s` with
    what the method reports (a method that read its weights from a cache reports the cost of
    computing them)."""
    start = time.perf_counter()
    unlearned = method(model, task)
    return unlearned, {"time/unlearn_s": time.perf_counter() - start, **method.stats}
