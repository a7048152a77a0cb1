"""CCUP's unlearning step against one evaluation pass, and its solve time against embedding width and forget set
size. Times are measured side by side in one run; read the ratios, not the absolute numbers."""
import time

import torch

from ccup.projection import ccup_map


def best_of(fn, repeats: int = 5) -> float:
    """Fastest of a few runs, in seconds: the least disturbed by the rest of the machine."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def unit_columns(d: int, m: int) -> torch.Tensor:
    T = torch.randn(d, m)
    return T / T.norm(dim=0)


def main() -> list[dict]:
    rows = []
    for d in (512, 768, 1024):
        for m_f in (1, 10, 100):
            T_f, T_r = unit_columns(d, m_f), unit_columns(d, 100)
            rows.append({"d": d, "forget classes": m_f,
                         "ccup_s": best_of(lambda T_f=T_f, T_r=T_r: ccup_map(T_f, T_r, 1000.0, 1.0)),
                         "nullspace_s": best_of(lambda T_f=T_f, T_r=T_r: ccup_map(T_f, T_r, float("inf"), 0.0))})
    base = rows[0]["ccup_s"]
    print("CCUP solve time (100 retained classes), relative to d=512 with 1 forget class")
    print(f"{'d':>5} {'forget':>7} {'ccup ms':>8} {'ratio':>6} {'nullspace ms':>13}")
    for row in rows:
        print(f"{row['d']:>5} {row['forget classes']:>7} {1e3 * row['ccup_s']:>8.2f} {row['ccup_s'] / base:>6.2f}"
              f" {1e3 * row['nullspace_s']:>13.2f}")
    return rows


if __name__ == "__main__":
    main()
