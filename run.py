"""One unlearning job: load model and data, unlearn, evaluate, write one result record and mirror it to the loggers.

    python run.py                              # the embedded default: CCUP forgets one Fashion-MNIST class
    python run.py -m alpha=0,0.5,1             # a sweep: one job, one record, one W&B run per alpha
"""
import time
from functools import partial
from pathlib import Path

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ccup.adapter import export_checkpoint
from ccup.errors import find_user_error
from ccup.loggers import finish_loggers, start_loggers
from ccup.record import config_id, provenance, write_record
from ccup.task import UnlearnTask


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> dict:
    job_start = time.perf_counter()
    config = OmegaConf.to_container(cfg, resolve=True)
    job = HydraConfig.get()
    choices = {group: option for group, option in job.runtime.choices.items() if not group.startswith("hydra/")}
    record = {"id": config_id(config), "status": "running", "config": config, "choices": choices, **provenance()}
    paths = [Path(cfg.results_dir) / "records" / f"{record['id']}.json", Path(job.runtime.output_dir) / "record.json"]
    loggers = []
    try:
        pl.seed_everything(cfg.seed, workers=True)
        loggers = [instantiate(node) for node in cfg.logger.values()]
        start_loggers(loggers, config)
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
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        if (error := find_user_error(exc)) is not None:
            raise SystemExit(f"error: {error}") from None
        raise
    finally:
        write_record(record, *paths)
        finish_loggers(loggers, record)
    return record["metrics"]


if __name__ == "__main__":
    main()
