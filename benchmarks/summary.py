"""The table of every ratio the benchmarks measured (docs/performance.md's table, which a test
regenerates from results/benchmarks.csv): each benchmark's cases, what is compared, the median
ratio, its spread over rounds, and its change from the run before."""
import pandas as pd


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """One row per ratio of `table` (every benchmark's rows, with their `benchmark`), formatted."""
    return pd.DataFrame({"benchmark": table["benchmark"], "case": table["case"],
                         "compared": table["compared"], "ratio": table["ratio"].map(ratio_text),
                         "spread": table["spread"].map(lambda s: f"{100 * s:.0f} %"),
                         "rounds": table["rounds"].astype(int).astype(str),
                         "change from the run before": table["change"].map(
                             lambda c: "" if pd.isna(c) else f"{100 * c:+.0f} %")})


def ratio_text(ratio: float) -> str:
    """A ratio as docs/performance.md reads it: 0.95×, 16.3×, 3,060×."""
    return f"{ratio:.2f}×" if ratio < 10 else f"{ratio:.1f}×" if ratio < 100 else f"{ratio:,.0f}×"


def render(table: pd.DataFrame) -> str:
    return table.to_markdown(index=False, disable_numparse=True,
                             colalign=["left", "left", "left", "right", "right", "right", "right"])
