"""Scaling: CCUP's solve time against embedding width and the number of forget classes."""
import pandas as pd
import torch

from benchmarks.common import best_of
from ccup.projection import ccup_map


def unit_columns(d: int, m: int) -> torch.Tensor:
    T = torch.randn(d, m)
    return T / T.norm(dim=0)


def main() -> pd.DataFrame:
    rows = []
    for d in (512, 768, 1024):
        for m_f in (1, 10, 100):
            T_f, T_r = unit_columns(d, m_f), unit_columns(d, 100)
            rows.append({"d": d, "forget classes": m_f,
                         "ccup ms": 1e3 * best_of(lambda T_f=T_f, T_r=T_r: ccup_map(T_f, T_r, 1000.0, 1.0)),
                         "nullspace ms": 1e3 * best_of(lambda T_f=T_f, T_r=T_r: ccup_map(T_f, T_r, float("inf"), 0.0))})
    table = pd.DataFrame(rows)
    table["ccup vs d=512, 1 class"] = table["ccup ms"] / table["ccup ms"].iloc[0]
    return table.round(3)
