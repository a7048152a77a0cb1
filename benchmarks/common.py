"""What the benchmarks share: timing, the composed suite config, and the tasks they run on."""
import time
from functools import partial
from pathlib import Path

import pytorch_lightning as pl
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from ccup.evaluator import Evaluator
from ccup.features import FeatureCache
from ccup.task import UnlearnTask

CONF = Path(__file__).parents[1] / "conf"


def best_of(fn, repeats: int = 3) -> float:
    """Fastest of a few runs, in seconds: the least disturbed by the rest of the machine."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def config(*overrides: str):
    """The suite's composed job config, as `run.py` sees it."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg.hydra
    return cfg


def task(clip, data, forget, train=None) -> UnlearnTask:
    return UnlearnTask.of(clip, data.classnames, data.templates, forget, train)


def evaluator(cache_dir: str, batch_size: int = 256) -> Evaluator:
    trainer = partial(pl.Trainer, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                      enable_model_summary=False, enable_checkpointing=False)
    return Evaluator(trainer, batch_size=batch_size, num_workers=0, cache=FeatureCache(cache_dir))
