"""What the benchmarks share: interleaved, repeated timing and the ratio it gives, the composed
suite config, the tasks and the evaluator they run on.

A ratio from one measurement on shared cores moves by tens of percent from one run to the next.
Every comparison is therefore measured in rounds: within a round each side runs once, in turn (each
round starting one side later), so that a slow stretch of the machine falls on all sides alike; the
ratio is computed within each round, and reported as the median over the rounds, with its spread,
(max - min) / median of the per-round ratios.
"""
import statistics
import time
from collections.abc import Callable, Mapping
from functools import partial

import pytorch_lightning as pl

from ccup.evaluator import Evaluator
from ccup.features import FeatureCache
from ccup.task import UnlearnTask

ROUNDS = 5


def seconds(fn: Callable[[], object], repeat: int = 1) -> float:
    """The fastest of `repeat` calls of `fn`, in seconds: within a round, the call least disturbed
    by the machine."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def rounds(sides: Mapping[str, Callable[[], object]], n: int = ROUNDS,
           repeat: Mapping[str, int] | int = 1, warm_up: bool = True) -> dict[str, list[float]]:
    """Seconds of each side in each of `n` rounds, the sides taking turns within a round and each
    round starting one side later, each side the best of its `repeat` calls (one number for all, or
    per side); first one call of each side to warm up (lazy imports, caches, the allocator), unless
    `warm_up` is False (sides that cost the same every time, and cost minutes)."""
    repeats = {name: repeat if isinstance(repeat, int) else repeat.get(name, 1) for name in sides}
    if warm_up:
        for fn in sides.values():
            fn()
    names, times = list(sides), {name: [] for name in sides}
    for turn in range(n):
        for name in names[turn % len(names):] + names[:turn % len(names)]:
            times[name].append(seconds(sides[name], repeats[name]))
    return times


def ratio(numerator: list[float], denominator: list[float]) -> dict:
    """The median over rounds of numerator / denominator, each round's own, and the spread of those
    ratios."""
    per_round = [a / b for a, b in zip(numerator, denominator, strict=True)]
    middle = statistics.median(per_round)
    return {"ratio": middle, "spread": (max(per_round) - min(per_round)) / middle,
            "rounds": len(per_round)}


def task(clip, data, forget, train=None) -> UnlearnTask:
    return UnlearnTask.of(clip, data.classnames, data.templates, forget, train)


def evaluator(cache_dir: str, batch_size: int = 256) -> Evaluator:
    trainer = partial(pl.Trainer, accelerator="cpu", devices=1, logger=False,
                      enable_progress_bar=False, enable_model_summary=False,
                      enable_checkpointing=False)
    return Evaluator(trainer, batch_size=batch_size, num_workers=0, cache=FeatureCache(cache_dir))
