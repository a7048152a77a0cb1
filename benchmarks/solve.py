"""Scaling: CCUP's closed form in the span of the C = 100 class embeddings (`ccup_factors`, what
CCUP runs) against the dense d x d solve of the closed form as written (docs/method.md#ccup), and
the nullspace projection's, against the embedding width d and the number of forget classes among the
100; and past C = d, at 1,000 and 21,841 classes, where CCUP solves on the d x d side, against
forming T_r T_r^T once. A solve takes milliseconds: 15 rounds, each side the best of many calls, on
one thread (two threads of a shared machine time their own wake-ups at this size, and moved the
ratio by a third from one run to the next)."""
import math
import statistics
from functools import partial

import pandas as pd
import torch

from benchmarks.common import ratio, rounds
from ccup.projection import ccup_factors, orthonormal_basis

CLASSES = 100


def unit_columns(d: int, m: int) -> torch.Tensor:
    T = torch.randn(d, m, dtype=torch.float64)
    return T / T.norm(dim=0)


def dense(T_f: torch.Tensor, T_r: torch.Tensor, lam: float, mu: float) -> torch.Tensor:
    """CCUP's closed form as written (docs/method.md#ccup), d x d solves: W* = M (M + lam T_f
    T_f^T)^-1 with M = I + mu T_r T_r^T; for lam = inf the hard constraint W T_f = 0, W = I - Q (Q^T
    M^-1 Q)^-1 (M^-1 Q)^T. What the suite's low-rank computation is measured against here, and
    tested against (tests/test_projection.py)."""
    identity = torch.eye(T_f.shape[0], dtype=torch.float64)
    M = identity + mu * T_r @ T_r.T
    if math.isinf(lam):
        Q = orthonormal_basis(T_f)
        MinvQ = torch.linalg.solve(M, Q)
        return identity - Q @ torch.linalg.solve(Q.T @ MinvQ, MinvQ.T)
    return torch.linalg.solve(M + lam * T_f @ T_f.T, M).T


def main() -> pd.DataFrame:
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = [solve_times(d, forget) for d in (512, 768, 1024) for forget in (1, 10, 50)]
        return pd.DataFrame(rows + [scale_times(512, 1000), scale_times(768, 21841)])
    finally:
        torch.set_num_threads(threads)


def solve_times(d: int, forget: int) -> dict:
    """The three solves for C = 100 unit class embeddings of width d, `forget` of them forgotten."""
    T_f, T_r = unit_columns(d, forget), unit_columns(d, CLASSES - forget)
    times = rounds({"ccup": partial(ccup_factors, T_f, T_r, 1000.0, 1.0),
                    "dense": partial(dense, T_f, T_r, 1000.0, 1.0),
                    "nullspace": partial(ccup_factors, T_f, T_r, float("inf"), 0.0)},
                   n=15, repeat={"ccup": 30, "dense": 5, "nullspace": 30})
    return {"case": f"d = {d}, {forget} of {CLASSES} classes forgotten",
            **{f"{side} ms": 1e3 * statistics.median(t) for side, t in times.items()},
            "compared": "dense solve / ccup", **ratio(times["dense"], times["ccup"])}


def scale_times(d: int, classes: int) -> dict:
    """CCUP forgetting one of `classes` unit class embeddings of width d, past C = d (ImageNet-1k's
    names at d = 512, ImageNet-21k's at d = 768), where the solve is a d x d one: against forming
    T_r T_r^T once, the least any solve with every retained class must do."""
    T_f, T_r = unit_columns(d, 1), unit_columns(d, classes - 1)
    times = rounds({"ccup": partial(ccup_factors, T_f, T_r, 1000.0, 1.0),
                    "gram": lambda: T_r @ T_r.T}, n=5)
    return {"case": f"d = {d}, 1 of {classes:,} classes forgotten",
            **{f"{side} ms": 1e3 * statistics.median(t) for side, t in times.items()},
            "compared": "ccup / forming T_r T_r^T", **ratio(times["ccup"], times["gram"])}
