"""One unlearning job: load model and data, unlearn, evaluate, write one result record and mirror it to the loggers.

    python run.py                              # the embedded default: CCUP forgets one Fashion-MNIST class
    python run.py -m alpha=0,0.5,1             # a sweep: one job, one record, one W&B run per alpha
    python run.py -m alpha=0,0.5,1             # again: jobs whose record is complete are skipped (rerun=true runs them)
"""
import logging
import sys
import time
from functools import partial
from pathlib import Path

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ccup import sweep
from ccup.adapter import export_checkpoint
from ccup.errors import UserError, check_values, one_line
from ccup.loggers import finish_loggers, start_logger
from ccup.record import NOT_IDENTITY, check_writable, config_id, provenance, read_record, write_record
from ccup.task import UnlearnTask

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> dict | None:
    job_start = time.perf_counter()
    config = OmegaConf.to_container(cfg, resolve=True)
    job = HydraConfig.get()
    choices = {group: option for group, option in job.runtime.choices.items() if not group.startswith("hydra/")}
    record = {"id": config_id(cfg), "status": "running", "config": config, "choices": choices,
              "overrides": list(job.overrides.task), **provenance()}
    paths = [Path(cfg.results_dir) / "records" / f"{record['id']}.json", Path(job.runtime.output_dir) / "record.json"]
    if not cfg.rerun and (done := read_record(paths[0])) and done.get("status") == "complete":
        write_record(done, paths[1])
        log.info(f"skipped: the record {paths[0]} is complete (rerun=true runs the job again)")
        return done["metrics"]
    loggers, failure = [], None
    try:
        check_values(config, skip=NOT_IDENTITY)
        check_writable(*paths)  # before any work: a job that cannot keep its result does not start
        pl.seed_everything(cfg.seed, workers=True)
        for node in cfg.logger.values():  # one by one: a logger that started is closed even if the next one fails
            loggers.append(start_logger(instantiate(node), config))
        method = instantiate(cfg.method)  # first: refuses bad settings before any model is loaded
        clip, data = instantiate(cfg.model), instantiate(cfg.dataset)
        train = partial(data.load, split="train", transform=clip.preprocess)
        task = UnlearnTask.of(clip, data.classnames, data.templates, cfg.forget.classes, train)
        start = time.perf_counter()
        unlearned = method(clip.model, task)
        cost = {"time/unlearn_s": time.perf_counter() - start, **method.stats}  # a cache hit reports its first cost
        test_set = data.load(split=data.split, transform=clip.preprocess)
        metrics = instantiate(cfg.evaluator)(clip.model, unlearned, task, test_set)
        if cfg.export:
            export_checkpoint(unlearned, clip.name, Path(job.runtime.output_dir) / "checkpoint" / "unlearned.pt")
        record.update(status="complete", metrics={**cost, **metrics, "time/job_s": time.perf_counter() - job_start})
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
        sweep.end_failed(failure, sweeping=job.mode == RunMode.MULTIRUN)
        return None
    metrics = record["metrics"]
    log.info(f"done in {metrics['time/job_s']:.1f} s: forget/acc {metrics['forget/acc']:.2f} (before "
             f"{metrics['forget/acc_before']:.2f}), retain/acc {metrics['retain/acc']:.2f} "
             f"(before {metrics['retain/acc_before']:.2f})")
    return metrics


if __name__ == "__main__":
    main()
    sys.exit(sweep.exit_status())  # a sweep that lost jobs exits non-zero, once every callback has run
