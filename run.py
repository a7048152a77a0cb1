"""One unlearning job: load model and data, unlearn, evaluate, export; ccup.job writes its record and mirrors it to the
loggers.

    python run.py                              # the embedded default: CCUP forgets one Fashion-MNIST class
    python run.py -m alpha=0,0.5,1             # a sweep: one job, one record, one W&B run per alpha
    python run.py -m alpha=0,0.5,1             # again: jobs whose record is complete are skipped (rerun=true runs them)
"""
import os
import sys
import time
from functools import partial
from pathlib import Path

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException, OverrideParseException
from hydra.utils import instantiate
from omegaconf import DictConfig

from ccup import search
from ccup.adapter import export_checkpoint
from ccup.data import by_class_name
from ccup.errors import UserError, check_group_choices, composition_error
from ccup.evals import check_config
from ccup.job import recorded
from ccup.loggers import handed, log_model
from ccup.record import manifest
from ccup.task import UnlearnTask


@recorded
def unlearn(cfg: DictConfig, loggers: list) -> dict:
    pl.seed_everything(cfg.seed, workers=True)
    forget = by_class_name(cfg.forget.classes, cfg.dataset.get("names"))  # a folder dataset's by folder name too
    about = manifest(cfg, HydraConfig.get().runtime.choices.method, forget)  # first: instantiate resolves cfg in place
    check_config(cfg.eval)  # before instantiate: an eval file written flat would be built as something else
    # First: they refuse bad settings. A method that trains logs its curves to the job's loggers.
    method = instantiate(cfg.method, **handed(cfg.method, loggers))
    evaluator = instantiate(cfg.evaluator)
    clip, data = instantiate(cfg.model), instantiate(cfg.dataset)
    test_set = data.load(split=data.split, transform=clip.preprocess)  # before the task: missing data is told first
    train = partial(data.load, split="train", transform=clip.preprocess)
    task = UnlearnTask.of(clip, data.classnames, data.templates, forget, train)
    start = time.perf_counter()
    unlearned = method(clip.model, task)
    cost = {"time/unlearn_s": time.perf_counter() - start, **method.stats}  # a cache hit reports its first cost
    metrics = evaluator(clip.model, unlearned, task, test_set)
    if cfg.export:
        folder = Path(HydraConfig.get().runtime.output_dir) / "checkpoint"
        export_checkpoint(unlearned, clip.name, folder / "unlearned.pt", about)
        log_model(loggers, folder)
    return {**cost, **metrics}


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> dict | float | None:
    if "search" in cfg:  # a trial of conf/hparams_search/: the validation classes in turn, one number to minimise
        return search.trial(cfg, unlearn)
    return unlearn(cfg)


if __name__ == "__main__":
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises what it cannot compose, for one error line instead of a dump
    try:
        check_group_choices(sys.argv[1:], Path(__file__).parent / "conf")
        main()  # a sweep that lost jobs, or its report, exits non-zero (ccup.sweep.Sweep)
    except (ConfigCompositionException, OverrideParseException) as exc:  # an unknown option or key, a bad override
        sys.exit(composition_error(exc))
    except UserError as exc:  # refused before any job started: a group's choice, a launcher's submission
        sys.exit(f"error: {exc}")
