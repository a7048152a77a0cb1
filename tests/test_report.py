"""Reports from synthetic records: rows by setting, the means and their intervals, the paired
differences, the files, the plots, the Pareto front, the Hydra callback. No model is trained; every
record is written by hand into tmp_path or made from a composed config."""
import json
import math
import re
import struct
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from helpers import CONF, ROOT, hydra_app, page, write_image_folder
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from benchmarks import summary as benchmarks
from ccup import plots, report, storage
from ccup.configs import compose
from ccup.errors import UserError
from ccup.job import Job, new_record
from ccup.sweep import Sweep

PNG = b"\x89PNG\r\n\x1a\n"
KINDS = ["alpha", "pareto", "cost"]


def role(method: str) -> str | None:
    """The role conf/method/<method>.yaml declares (None where it declares none, or there is no such
    file)."""
    path = CONF / "method" / f"{method}.yaml"
    return OmegaConf.load(path).get("role") if path.exists() else None


def record(method="ccup", forget="sandal", seed=0, alpha=1.0, lam=1000.0, status="complete",
           evals=(), **metrics) -> dict:
    """A result record as run.py writes it, reduced to the fields the report reads, its method's
    role as its config declares it; `evals` the names of the evaluations it ran (conf/eval/),
    metrics by keyword, slashes written as double underscores (forget__acc=1 is forget/acc)."""
    config = {"alpha": alpha, "seed": seed, "dataset": {"name": "fashion_mnist"}, "eval": {
                  name: OmegaConf.to_container(OmegaConf.load(CONF / "eval" / f"{name}.yaml")[name])
                  for name in evals},
              "forget": {"classes": forget.split("+")},
              "method": {"_target_": f"ccup.method.{method}", "alpha": alpha, "seed": seed,
                         "lam": lam, **({"role": role(method)} if role(method) else {})}}
    return {"id": f"{method}-{forget}-{seed}-{alpha}-{lam}", "status": status, "config": config,
            "choices": {"model": "tiny", "method": method},
            "metrics": {key.replace("__", "/"): value for key, value in metrics.items()}}


def write(results_dir: Path, *records: dict) -> Path:
    (results_dir / "records").mkdir(parents=True, exist_ok=True)
    for rec in records:
        (results_dir / "records" / f"{rec['id']}.json").write_text(json.dumps(rec))
    return results_dir


def accuracies(forget, retain, forget_before=80.0, retain_before=86.0, seconds=0.01) -> dict:
    return {"forget__acc": forget, "retain__acc": retain, "forget__acc_before": forget_before,
            "retain__acc_before": retain_before, "time__unlearn_s": seconds}


# Two forget sets x two seeds of one setting, chosen so that an interval over forget sets (of their
# means over seeds) differs from one over records:
#                        seed 0   seed 1 | mean over seeds
#   forget/acc  sandal        0        2 |  1
#               bag          10        4 |  7
#   retain/acc  sandal       80       84 | 82
#               bag          91       89 | 90
# Means over forget sets per seed: forget/acc 5 and 3, retain/acc 85.5 and 86.5.
GRID = [record("finetune", forget, seed, **accuracies(f, r))
        for forget, seed, f, r in [("sandal", 0, 0, 80), ("sandal", 1, 2, 84), ("bag", 0, 10, 91),
                                   ("bag", 1, 4, 89)]]
# A deterministic method run with two seeds (identical results) and one run with a single seed.
DETERMINISTIC = [record("nullspace", forget, seed, **accuracies(f, 85.0))
                 for forget, f in [("sandal", 1.0), ("bag", 3.0)] for seed in (0, 1)]
ONE_SEED = [record("ccup", forget, 0, **accuracies(f, 85.5))
            for forget, f in [("sandal", 0.5), ("bag", 1.5)]]


@pytest.fixture
def sweep(tmp_path):
    """Three methods at alpha = 1 (the records above) and at alpha = 0, 0.5, and a failed record."""
    extra = [record(method, forget, seed, alpha,
                    **accuracies(80.0 * (1 - alpha), 86.0 - alpha, seconds=s))
             for method, s in [("ccup", 0.005), ("nullspace", 0.004), ("finetune", 10.0)]
             for forget in ("sandal", "bag") for seed in (0, 1) for alpha in (0.0, 0.5)]
    failed = record("ccup", "coat", status="failed")
    return write(tmp_path, *GRID, *DETERMINISTIC, *ONE_SEED, *extra, failed)


def row(summary: pd.DataFrame, method: str, alpha=1.0) -> pd.Series:
    rows = summary[(summary["method"] == method) & (summary["alpha"] == alpha)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_means_and_intervals_match_their_definitions(tmp_path):
    summary = report.summarize(report.load_records(write(tmp_path, *GRID, *DETERMINISTIC,
                                                         *ONE_SEED)))
    grid = row(summary, "finetune")
    assert grid["forget/acc"] == pytest.approx(4.0)  # mean of 1 and 7
    # Resampling two forget sets gives a mean of 1, 4 or 7 (1/4, 1/2, 1/4): the 2.5th and 97.5th
    # percentiles are the ends. Over the four records instead, the lower end would fall below 1.
    assert (grid["forget/acc ci_low"], grid["forget/acc ci_high"]) == (1.0, 7.0)
    assert (grid["retain/acc ci_low"], grid["retain/acc ci_high"]) == (82.0, 90.0)
    assert (grid["forget sets"], grid["seeds"]) == (2, 2)
    deterministic = row(summary, "nullspace")
    assert (deterministic["forget/acc ci_low"], deterministic["forget/acc ci_high"]) == (1.0, 3.0)
    # all equal
    assert (deterministic["retain/acc ci_low"], deterministic["retain/acc ci_high"]) == (85.0, 85.0)
    one_set = report.summarize(report.load_records(write(tmp_path / "one", *GRID[:2])))
    # its seeds
    assert (one_set["forget/acc ci_low"].item(), one_set["forget/acc ci_high"].item()) == (0.0, 2.0)
    alone = report.summarize(report.load_records(write(tmp_path / "alone", GRID[0])))
    assert math.isnan(alone["forget/acc ci_low"].item())  # one record: no interval


def test_an_interval_is_scipys_bias_corrected_and_accelerated_bootstrap_of_the_mean():
    values = [0.0, 1.0, 4.0, 9.0, 16.0, 25.0, 36.0]
    low, high = report.interval(values)
    assert low < sum(values) / len(values) < high and 0.0 <= low and high <= 36.0
    # Where 9,999 resamples of these seven put it, corrected for their skew: the percentile interval
    # is (4.43, 22.57).
    assert (low, high) == pytest.approx((36 / 7, 166 / 7))
    assert report.interval([3.0, float("nan"), 3.0]) == (3.0, 3.0)
    assert all(math.isnan(end) for end in report.interval([2.0]))


def test_tables_show_means_with_their_intervals(tmp_path):
    results = write(tmp_path, *GRID, *DETERMINISTIC, *ONE_SEED)
    table = report.with_intervals(report.summarize(report.load_records(results)))
    assert row(table, "finetune")["forget/acc"] == "4.00 [1.00, 7.00]"
    assert row(table, "ccup")["forget/acc"] == "1.00 [0.50, 1.50]"
    # per set 82 - 86 and 90 - 86
    assert row(table, "finetune")["retain/acc_delta"] == "0.00 [-4.00, +4.00]"
    assert row(table, "ccup")["time/unlearn_s"] == "0.01 [0.01, 0.01]"


def test_report_files_hold_one_row_per_setting(sweep):
    markdown = report.write_report(sweep)
    table = pd.read_csv(sweep / "report.csv")
    assert len(table) == 9  # 3 methods x 3 alphas; the failed record is left out
    assert sorted(table["method"].unique()) == ["ccup", "finetune", "nullspace"]
    assert {"forget/acc", "forget/acc ci_low", "forget/acc ci_high", "seeds"} <= set(table.columns)
    finetune = table[(table["method"] == "finetune") & (table["alpha"] == 1.0)].iloc[0]
    assert (finetune["forget/acc ci_low"], finetune["forget/acc ci_high"]) == (1.0, 7.0)
    assert (sweep / "report.md").read_text() == markdown
    for title in ("## Headline: mean [95% CI]", "## Every metric, mean [95% CI]",
                  "## Per forget set"):
        assert markdown.count(title) == 1
    assert markdown.count("4.00 [1.00, 7.00]") == 2  # forget/acc in both tables
    tex = (sweep / "report.tex").read_text()
    # the headline, what each method learnt from, every metric
    assert tex.count("\\begin{tabular}") == 3 and tex.count("\\end{table}") == 3
    assert "## What each method learnt from, beside the class names" in markdown
    assert tex.count("4.00 [1.00, 7.00]") == 2


def test_the_report_says_what_each_method_learnt_from():
    dataset = {"name": "fashion_mnist"}
    oracle = {"recipe": {"train_data": {"fashion_mnist": {}, "digits": {}}}}
    real, synthetic = (
        OmegaConf.to_container(compose("method=finetune", f"samples={option}").method, resolve=True)
        for option in ("real", "synthetic"))
    # the samples config's word, whatever its class; a record from before it: train images
    renamed = {"samples": {"_target_": "mine.Synthesised", "source": "generated", "per_class": 8}}
    earlier = {"samples": {"_target_": "baselines.samples.RealSamples", "per_class": 16}}
    methods = ({"lam": 1}, oracle, real, synthetic, renamed, earlier)
    assert [report.learnt_from({"method": method, "dataset": dataset}) for method in methods] == [
        "class names only", "all train images of digits, fashion_mnist but the forget classes'",
        "up to 256 train images per class of fashion_mnist",
        "up to 64 synthetic images per class of fashion_mnist",
        "up to 8 generated images per class of fashion_mnist",
        "up to 16 train images per class of fashion_mnist"]


def test_the_headline_gives_intervals_change_from_before_and_median_cost(sweep):
    headline = report.headline(report.summarize(report.load_records(sweep)))
    finetune = headline[(headline["method"] == "finetune") & (headline["alpha"] == 1.0)].iloc[0]
    assert finetune.tolist() == ["finetune", 1.0, "4.00 [1.00, 7.00]", "0.00 [-4.00, +4.00]",
                                 "0.01 [0.01, 0.01]", "2 × 2"]
    assert list(headline.columns) == ["method", "alpha", "forget/acc", "retain/acc Δ",
                                      "time/unlearn_s (median)", "forget sets × seeds"]


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header: the signature, then the IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == PNG and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_every_plot_kind_is_a_png(sweep):
    markdown = report.write_report(sweep)
    pngs = sorted(path.name for path in sweep.glob("*.png"))
    assert pngs == sorted(f"{kind}_tiny_fashion_mnist.png" for kind in KINDS)
    for name in pngs:
        width, height = png_size(sweep / name)
        assert width > 300 and height > 300 and (sweep / name).stat().st_size > 10_000
        assert f"]({name})" in markdown


def test_pareto_front_is_exactly_the_non_dominated_points():
    points = pd.DataFrame({"retain/acc": [90, 85, 95, 95, 90, float("nan"), 80, 70],
                           "forget/acc": [0, 0, 10, 20, 0, 0, 50, -1]}, index=list("ABCDEFGH"))
    # B is beaten by A (same forget, lower retain), D by C, G by A; A and E tie, so neither beats
    # the other; F has no retain accuracy; H forgets most of all.
    assert list(points.index[plots.pareto_front(points)]) == ["A", "C", "E", "H"]


@pytest.mark.parametrize("alphas, before, expected", [
    # the original model: the mean before
    ([1.0, 0.5], [90.0, 92.0], ([0.0, 0.5, 1.0], [91.0, 40.0, 10.0])),
    # run at alpha = 0: its own value
    ([1.0, 0.5, 0.0], [90.0, 92.0, 91.0], ([0.0, 0.5, 1.0], [95.0, 40.0, 10.0])),
    # no before-forgetting value: no origin
    ([1.0, 0.5], [float("nan")] * 2, ([0.5, 1.0], [40.0, 10.0])),
])
def test_alpha_curves_start_at_the_original_model(alphas, before, expected):
    line = pd.DataFrame({"alpha": alphas, "forget/acc": [10.0, 40.0, 95.0][:len(alphas)],
                         "forget/acc_before": before})
    assert plots.alpha_curve(line, "forget/acc") == expected


@pytest.mark.parametrize("records", [
    pytest.param([record(forget__acc=1.0, retain__acc=85.0)],
                 id="one-record-without-before-or-time"),
    pytest.param([record(alpha=0.5, **accuracies(30.0, 85.0)),
                  record("nullspace", alpha=0.5, forget__acc=2.0)],
                 id="one-alpha-a-metric-missing-from-one-method"),
    pytest.param([record(alpha=0.0, **accuracies(80.0, 86.0, seconds=0.0))], id="zero-cost"),
])
def test_sparse_records_still_give_every_file(tmp_path, records):
    report.write_report(write(tmp_path, *records))
    for name in ("report.md", "report.csv", "report.tex",
                 *(f"{kind}_tiny_fashion_mnist.png" for kind in KINDS)):
        assert (tmp_path / name).stat().st_size > 0, name
    assert "forget/acc" in pd.read_csv(tmp_path / "report.csv")


def test_cross_dataset_accuracies_join_the_columns_after_and_before(tmp_path):
    metrics = {"cross/digits/acc_before": 90.0, "cross/digits/acc": 89.0, "cross/digits/n": 5,
               "unlearn/steps": 3}
    records = report.load_records(write(tmp_path, record(
        forget__acc=1.0, **{k.replace("/", "__"): v for k, v in metrics.items()})))
    assert report.metric_columns(records) == ["forget/acc", "cross/digits/acc",
                                              "cross/digits/acc_delta", "cross/digits/acc_before"]
    assert records["cross/digits/acc_delta"].item() == -1.0
    assert list(report.summarize(records).filter(like="cross/").columns) == [
        f"cross/digits/acc{m} {end}".strip() for m in ("", "_delta", "_before")
        for end in ("", "ci_low", "ci_high")]


def test_the_console_shows_the_compact_table_and_where_the_full_report_is(tmp_path, capsys):
    report.main([str(write(tmp_path, *ORACLE_CASE))])
    lines = capsys.readouterr().out.strip().splitlines()
    # ccup's row averages sandal and bag
    assert [c.strip() for c in lines[0].split("|")[1:-1]] == [
        "method", "role", "alpha", "forget/acc", "forget/acc_before", "retain/acc",
        "retain/acc_before", "cross/digits/acc", report.GAP, "forget sets × seeds"]
    # the oracle first
    assert [c.strip() for c in lines[2].split("|")[1:-1]] == [
        "retrain", "oracle", "0.5", "40.00", "80.00", "87.00", "86.00", "97.50", "13.67", "1 × 1"]
    assert len(lines) == 2 + 3 + 2 and lines[-1] == f"full report: {tmp_path / 'report.md'}"


def test_the_console_says_how_many_forget_sets_and_seeds_a_row_averages_where_it_averages_several(
        tmp_path, capsys):
    write(tmp_path, record(forget="sandal", **accuracies(0, 86)),
          record(forget="bag", **accuracies(10, 88)))
    report.main([str(tmp_path)])
    header, _, row = capsys.readouterr().out.strip().splitlines()[:3]
    assert [c.strip() for c in header.split("|")[1:-1]][-1] == "forget sets × seeds"
    assert [c.strip() for c in row.split("|")[1:-1]][2:] == ["5.00", "80.00", "87.00", "86.00",
                                                             "2 × 1"]


def test_records_of_several_folders_count_once_each(tmp_path):
    first, second = write(tmp_path / "a", GRID[0]), write(tmp_path / "b", GRID[0], GRID[1])
    report.main([str(first), str(second)])
    assert pd.read_csv(first / "report.csv")["seeds"].tolist() == [2]
    # seeds 0 and 2 once each
    assert pd.read_csv(first / "report.csv")["forget/acc"].tolist() == [1.0]
    assert not (second / "report.md").exists()


@pytest.mark.parametrize("records", [[], [record(status="failed")]],
                         ids=["no-records", "only-failed"])
def test_no_complete_record_is_one_error_line(tmp_path, records):
    write(tmp_path, *records)
    with pytest.raises(SystemExit) as exit_:
        report.main([str(tmp_path)])
    assert exit_.value.code == (f"error: no complete records in {tmp_path / 'records'}: "
                                "run `make run` first")


def test_the_sweep_ends_with_the_report_of_its_results_dir(tmp_path):
    write(tmp_path / "results", *GRID)
    (tmp_path / "multirun").mkdir()
    Sweep().on_multirun_end(OmegaConf.create({
        "results_dir": str(tmp_path / "results"),
        "hydra": {"sweep": {"dir": str(tmp_path / "multirun")}}}))
    assert "4.00 [1.00, 7.00]" in (tmp_path / "results" / "report.md").read_text()


def test_the_config_registers_the_callback_with_its_report():
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = hydra_compose("config", return_hydra_config=True)
    callback = instantiate(cfg.hydra.callbacks.sweep)
    assert isinstance(callback, Sweep) and callback.report


def test_a_hydra_multirun_ends_with_its_report_and_fails_without_one(tmp_path):
    """A stand-in job that writes one record per seed, under the same callback entry as
    conf/config.yaml, its multirun run through Hydra in this process (hydra_app)."""
    (tmp_path / "config.yaml").write_text(textwrap.dedent(f"""\
        results_dir: {tmp_path / 'results'}
        seed: 0
        sweep: stand-in
        hydra:
          callbacks:
            sweep:
              _target_: ccup.sweep.Sweep
          sweep:
            dir: {tmp_path / 'multirun'}
        """))
    (tmp_path / "job.py").write_text(textwrap.dedent(f"""\
        import json
        from pathlib import Path
        import hydra
        from hydra.core.hydra_config import HydraConfig

        @hydra.main(version_base="1.3", config_path=".", config_name="config")
        def main(cfg):
            record = json.loads({json.dumps(json.dumps(GRID[0]))})
            record["id"] = f"seed{{cfg.seed}}"
            record["config"]["seed"] = cfg.seed
            (Path(cfg.results_dir) / "records").mkdir(parents=True, exist_ok=True)
            (Path(cfg.results_dir) / "records" / f"seed{{cfg.seed}}.json").write_text(json.dumps(record))
            (Path(HydraConfig.get().runtime.output_dir) / "record.json").write_text(json.dumps(record))

        main()
        """))  # noqa: E501

    def sweep(*args):
        return hydra_app(tmp_path / "job.py", "-m", *args)

    result = sweep("seed=0,1")
    assert result.exit is None, result.stdout
    assert pd.read_csv(tmp_path / "results" / "report.csv")["seeds"].tolist() == [2]
    assert (tmp_path / "results" / "pareto_tiny_fashion_mnist.png").read_bytes()[:8] == PNG
    (tmp_path / "results" / "records" / "broken.json").write_text(
        json.dumps({"status": "complete"}))
    result = sweep("seed=2")  # every job completes, but the report cannot read the folder's records
    assert result.exit == (f"error: the report of {tmp_path / 'results'} could not be built: "
                           "KeyError: 'id'")


def leaks(probe: float, heldout: float, steps: int, probe_before=0.99,
          heldout_before=90.0) -> dict:
    return {"leak__probe_auroc": probe, "leak__probe_auroc_before": probe_before,
            "forget__acc_heldout_prompts": heldout,
            "forget__acc_heldout_prompts_before": heldout_before,
            "relearn__steps_to_half": steps, "relearn__reached": 1}


# Two methods on two forget sets at alpha = 1 with leakage metrics, the same at alpha = 0.5 (left
# out of the table), and a method run without the leakage evaluations (left out too). The original's
# probe AUROC differs by forget set.
LEAKS = [record(method, forget, alpha=alpha, evals=("probe", "prompts", "relearn"),
                **accuracies(f, 85.0), **leaks(p, h, s, probe_before=pb))
         for alpha in (1.0, 0.5)
         for method, forget, f, p, h, s, pb in [("ccup", "sandal", 0.0, 0.98, 60.0, 4, 0.99),
                                                ("ccup", "bag", 2.0, 0.96, 40.0, 6, 0.97),
                                                ("finetune", "sandal", 4.0, 0.80, 10.0, 20, 0.99),
                                                ("finetune", "bag", 6.0, 0.70, 30.0, 40, 0.97)]]


def test_the_leakage_table_puts_the_original_above_each_method_at_the_largest_alpha(tmp_path):
    records = report.load_records(write(tmp_path, *LEAKS,
                                        record("nullspace", **accuracies(0.0, 85.0))))
    table = report.leakage(records)
    # nullspace has no leakage metric
    assert table["method"].tolist() == [report.ORIGINAL, "ccup", "finetune"]
    original, ccup, finetune = (table.iloc[i] for i in range(3))
    assert original["alpha"] == 0.0 and (ccup["alpha"], finetune["alpha"]) == (1.0, 1.0)
    # mean of the before values 0.99 and 0.97
    assert original["leak/probe_auroc"] == pytest.approx(0.98)
    assert (original["forget/acc"] == pytest.approx(80.0)
            and math.isnan(original["relearn/steps_to_half"]))
    assert ccup["leak/probe_auroc"] == pytest.approx(0.97)
    assert (ccup["leak/probe_auroc ci_low"], ccup["leak/probe_auroc ci_high"]) == (0.96, 0.98)
    assert finetune["relearn/steps_to_half"] == 30 and finetune["forget/acc_heldout_prompts"] == 20
    assert "leak/probe_auroc_before" not in table  # the before values are the first row
    assert report.leakage(report.load_records(write(tmp_path / "plain", *GRID))) is None
    # as the documentation quotes it, from leakage.csv: the original model has no role
    oracle = [record("retrain", forget, evals=("probe",), **accuracies(0.0, 85.0),
                     **leaks(0.9, 0.0, 10, probe_before=0.98)) for forget in ("sandal", "bag")]
    report.leakage(report.load_records(write(tmp_path / "oracle", *LEAKS, *oracle))).to_csv(
        tmp_path / "leakage.csv", index=False)  # as write_report writes it
    quoted = report.with_intervals(pd.read_csv(tmp_path / "leakage.csv"))
    assert quoted["role"].tolist() == ["", "oracle", "anchor", "method"]


def test_the_report_gains_the_leakage_table_and_plot_only_where_records_have_leakage(tmp_path):
    markdown = report.write_report(write(tmp_path, *LEAKS))
    assert markdown.count("## Leakage at alpha = 1 (first: the original model)") == 1
    # AUROCs: three decimals
    assert "| before forgetting |" in markdown and "0.970 [0.960, 0.980]" in markdown
    # one setting per method: names suffice
    assert "setting" not in markdown.split("## Leakage")[1].split("##")[0]
    # headline, what each method learnt from, every metric, leakage
    assert (tmp_path / "report.tex").read_text().count("\\begin{tabular}") == 4
    assert pd.read_csv(tmp_path / "leakage.csv")["method"].tolist() == [report.ORIGINAL, "ccup",
                                                                        "finetune"]
    width, height = png_size(tmp_path / "leakage_tiny_fashion_mnist.png")
    assert width > 300 and height > 300 and "](leakage_tiny_fashion_mnist.png)" in markdown
    plain = write(tmp_path / "plain", *GRID)
    assert "Leakage" not in report.write_report(plain)
    assert (not (plain / "leakage.csv").exists()
            and not (plain / "leakage_tiny_fashion_mnist.png").exists())


def test_plot_labels_name_settings_only_where_a_method_has_several():
    summary = pd.DataFrame({"method": ["ccup", "ccup", "lipschitz"], "alpha": 1.0, "model": "tiny",
                            "setting": ["lam=100", "lam=1000",
                                        " ".join(f"setting_{i}=1" for i in range(12))]})
    labels = plots.prepare(summary)[0]["label"].tolist()
    # one lipschitz setting: its name says it all
    assert labels == ["ccup lam=100", "ccup lam=1000", "lipschitz"]
    ablation = plots.prepare(
        pd.concat([summary, summary.assign(setting="k=1").iloc[[2]]]))[0]["label"].tolist()
    assert (all(len(line) <= 40 for label in ablation for line in label.splitlines())
            and "\n" in ablation[2])


def test_numbers_are_written_with_two_decimals_and_round_off_as_zero():
    from ccup.report import fmt
    values = [87.634, 0.0443, 3.9e-17, 0.0, float("nan")]
    assert [fmt(value) for value in values] == ["87.63", "0.044", "0.00", "0.00", ""]


# --- gaps to the oracle ---------------------------------------------------------------------------
# CCUP and the oracle on sandal (seed 0), CCUP on bag where no oracle ran, the oracle at alpha 0.5
# (not the oracle).
ORACLE_CASE = [
    record("ccup", "sandal", **accuracies(1.0, 87.0), all__acc=86.0, cross__digits__acc=97.0,
           leak__probe_auroc=0.99),
    record("retrain", "sandal", **accuracies(0.0, 88.0), all__acc=87.0, cross__digits__acc=97.5,
           leak__probe_auroc=0.97),
    record("retrain", "sandal", alpha=0.5, **accuracies(40.0, 87.0), all__acc=86.5,
           cross__digits__acc=97.5, leak__probe_auroc=0.98),
    record("ccup", "bag", **accuracies(2.0, 86.0), all__acc=85.0, cross__digits__acc=97.0,
           leak__probe_auroc=0.9),
]


def test_each_record_is_read_as_its_gap_to_the_oracle_of_its_forget_set_and_seed(tmp_path):
    records = report.load_records(write(tmp_path, *ORACLE_CASE)).set_index(
        ["method", "forget", "alpha"])
    ccup = records.loc[("ccup", "sandal", 1.0)]
    assert (ccup["gap/forget/acc"] == 1.0 and ccup["gap/retain/acc"] == 1.0
            and ccup["gap/all/acc"] == 1.0)
    assert (ccup["gap/cross/digits/acc"] == 0.5
            and ccup["gap/leak/probe_auroc"] == pytest.approx(0.02))
    # forget, retain, cross-dataset: each once
    assert ccup[report.GAP] == pytest.approx((1 + 1 + 0.5) / 3)
    assert records.loc[("retrain", "sandal", 1.0), report.GAP] == 0.0
    assert records.loc[("retrain", "sandal", 0.5), "gap/forget/acc"] == 40.0
    # no oracle: no gap, not a zero gap
    assert records.loc[("ccup", "bag", 1.0)].filter(like="gap/").isna().all()
    assert "gap/retain/acc_before" not in records and "gap/cross/digits/acc_before" not in records


def evidence(forget: float, retain: float, cross: float, forget_ap: float, retain_map: float,
             heldout: float) -> dict:
    """The metrics the headline reads, after unlearning (before: the original's, the same for every
    method)."""
    return {**accuracies(forget, retain), "cross__digits__acc": cross,
            "retrieval__forget_ap": forget_ap, "retrieval__retain_map": retain_map,
            "forget__acc_heldout_prompts": heldout}


# The oracle, a blocklist that edits nothing (the original's retrieval and held-out names, no forget
# accuracy), and a method that forgets by pushing the class's images below chance.
HEADLINE_CASE = [record("retrain", **evidence(0.0, 88.0, 97.5, 24.0, 90.0, 0.0)),
                 record("mask", **evidence(0.0, 88.5, 97.0, 98.0, 91.0, 0.0)),
                 record("ccup", **evidence(0.5, 87.0, 97.0, 6.0, 89.0, 1.5))]


def test_the_headline_is_the_mean_gap_over_accuracies_and_the_evidence_the_class_is_gone(tmp_path):
    records = report.load_records(write(tmp_path, *HEADLINE_CASE)).set_index("method")
    # forget, retain, cross-dataset accuracy; forget and retain retrieval; held-out prompts: each
    # once.
    assert records.loc["mask", report.HEADLINE] == pytest.approx((0 + 0.5 + 0.5 + 74 + 1 + 0) / 6)
    assert records.loc["ccup", report.HEADLINE] == pytest.approx((0.5 + 1 + 0.5 + 18 + 1 + 1.5) / 6)
    # hidden: nearer the oracle's accuracy than ccup
    assert records.loc["mask", report.GAP] == pytest.approx(1 / 3)
    assert records.loc["ccup", report.GAP] == pytest.approx(2 / 3)
    assert records.loc["retrain", report.HEADLINE] == 0.0
    assert records.loc[["retrain", "mask", "ccup"], "role"].tolist() == ["oracle", "reference",
                                                                         "anchor"]
    without_retrieval = [{**r, "metrics": {k: v for k, v in r["metrics"].items()
                                           if not k.startswith("retrieval")}}
                         for r in HEADLINE_CASE]
    assert report.HEADLINE not in report.load_records(write(tmp_path / "blind", *without_retrieval))


def test_the_paired_table_reads_the_headline_where_there_is_one(tmp_path):
    markdown = report.write_report(write(tmp_path, *HEADLINE_CASE))
    assert f"## Paired with ccup at alpha = 1: {report.HEADLINE} difference" in markdown
    # neither the anchor nor the oracle
    assert pd.read_csv(tmp_path / "paired.csv")["method"].tolist() == ["mask"]


def test_the_report_shows_the_oracle_first_and_gap_columns_only_where_it_ran(tmp_path):
    assert report.NO_ORACLE not in report.write_report(write(tmp_path / "oracle", *ORACLE_CASE))
    table = pd.read_csv(tmp_path / "oracle" / "report.csv")
    assert table["method"].tolist()[0] == "retrain"
    assert {report.GAP, "gap/forget/acc", "gap/leak/probe_auroc"} <= set(table.columns)
    # says why, once
    assert report.NO_ORACLE in report.write_report(write(tmp_path / "plain", *GRID))
    assert not any(column.startswith("gap/")
                   for column in pd.read_csv(tmp_path / "plain" / "report.csv"))


def test_two_oracles_for_one_forget_set_are_refused(tmp_path):
    other = record("retrain", "sandal", lam=1.0, **accuracies(5.0, 80.0))
    with pytest.raises(UserError, match="several oracle settings for one forget set and seed"):
        report.load_records(write(tmp_path, *ORACLE_CASE, other))


def test_records_from_a_dirty_tree_are_flagged(tmp_path):
    clean, dirty = ONE_SEED[0], {**ONE_SEED[1], "git_dirty": True}
    assert "Warning" not in report.write_report(write(tmp_path / "clean", clean))
    markdown = report.write_report(write(tmp_path / "dirty", clean, dirty))
    assert ("Warning: 1 of 2 records come from a tree with uncommitted changes" in markdown
            and dirty["id"] in markdown)


def test_times_are_medians_so_one_slow_run_does_not_move_them(tmp_path):
    runs = [record("finetune", "sandal", seed, **accuracies(1.0, 85.0, seconds=seconds))
            for seed, seconds in enumerate([10, 11, 100])]
    summary = report.summarize(report.load_records(write(tmp_path, *runs)))
    assert summary["time/unlearn_s"].item() == 11 and summary["forget/acc"].item() == 1.0


def test_the_report_says_where_the_time_went_method_by_method(tmp_path):
    def timed(method, forget="sandal", **times):
        times = {f"time__{key}": value for key, value in times.items()}
        return record(method, forget, forget__acc=0.0, **times)

    complete = [timed("finetune", forget, job_s=wall, job_cpu_s=3600.0)
                for forget, wall in [("sandal", 3600.0), ("bag", 1800.0)]]
    complete.append(timed("ccup", job_s=18.0, job_cpu_s=72.0))
    table = report.time_spent(report.load_records(write(tmp_path / "cpu", *complete)))
    assert table.values.tolist() == [["finetune", 2, "90.00", "120.00", "99 %"],
                                     ["ccup", 1, "0.30", "1.20", "1 %"],
                                     ["total", 3, "90.30", "121.20", "100 %"]]
    assert list(table.columns)[2:] == ["wall min", "CPU min", "share of CPU min"]
    # records written before jobs counted their CPU: no CPU total for their method, and the share
    # and order are of wall minutes
    older = [timed("nullspace", job_s=360.0),
             *(timed("random_label", forget, job_s=600.0, **cpu)
               for forget, cpu in [("sandal", {"job_cpu_s": 60.0}), ("bag", {})])]
    markdown = report.write_report(write(tmp_path / "mixed", *complete, *older))
    table = report.time_spent(report.load_records(tmp_path / "mixed"))
    assert table.values.tolist() == [["finetune", 2, "90.00", "120.00", "77 %"],
                                     ["random_label", 2, "20.00", "", "17 %"],
                                     ["nullspace", 1, "6.00", "", "5 %"],
                                     ["ccup", 1, "0.30", "1.20", "<1 %"],
                                     ["total", 6, "116.30", "", "100 %"]]
    assert table.columns[-1] == "share of wall min" and "## Where the time went" in markdown


# --- the documentation quotes the committed results ---------------------------------------------

@pytest.mark.parametrize("folder, csv, table, where", [
    ("benchmark", "report", report.headline, "benchmark.md"),
    ("benchmark", "paired", report.paired_table, "benchmark.md"),
    ("ablation", "report", report.headline, "methods.md"),
    ("oracles", "report", report.headline, "protocol.md"),
    ("leakage", "leakage", report.with_intervals, "benchmark.md")])
def test_readme_quotes_each_committed_table_as_its_csv_regenerates_it(folder, csv, table, where):
    regenerated = table(pd.read_csv(ROOT / "results" / folder / f"{csv}.csv"))
    assert report.render(regenerated) in page(where), f"{where}'s {folder} {csv} table is stale"


# a mean with its interval as the tables write it, `−` or `-` for minus, the interval's line broken
INTERVAL = re.compile(r"[−+-]?[0-9.]+\s+\[[−+-]?[0-9.]+,\s+[−+-]?[0-9.]+\]")


@pytest.mark.parametrize("name", ["README.md", *(p.name for p in (ROOT / "docs").glob("*.md"))])
def test_every_interval_the_prose_quotes_is_a_cell_of_a_table_on_its_page(name):
    """Prose quotes the page's tables, which tests regenerate from the committed CSVs: a number
    left behind when they change fails here."""
    def plain(text: str) -> str:
        return " ".join(text.split()).replace("−", "-").replace("+", "")

    lines = page(name).splitlines()
    cells = {plain(cell) for line in lines if line.startswith("|") for cell in line.split("|")}
    prose = "\n".join(line for line in lines if not line.startswith("|"))
    assert [q for q in INTERVAL.findall(prose) if plain(q) not in cells] == []


def test_readme_quotes_every_benchmark_ratio_as_the_committed_csv_gives_it():
    table = benchmarks.summary(pd.read_csv(ROOT / "results" / "benchmarks.csv"))
    assert len(table) >= 10 and all(int(n) >= 5 for n in table["rounds"])
    assert benchmarks.render(table) in page("performance.md"), "performance.md's table is stale"


# --- a row is a setting ---------------------------------------------------------------------------

def composed(*overrides: str, forget=1.0) -> dict:
    """The record a job of `overrides` starts with (ccup.job.new_record), complete with made-up
    accuracies."""
    cfg = compose(*overrides)
    record = new_record(cfg, Job.from_hydra())
    return {**record, "status": "complete",
            "metrics": {key.replace("__", "/"): value
                        for key, value in accuracies(forget, 85.0).items()}}


def test_runs_whose_prompts_or_samples_differ_are_rows_of_their_own_and_seeds_are_not(tmp_path):
    runs = [composed("forget=sandal"),
            composed("forget=sandal", "prompts=file",
                     "dataset.templates_file=conf/prompts/example.txt", forget=3.0),
            composed("method=finetune", "samples=real"),
            composed("method=finetune", "samples=synthetic"),
            composed("method=finetune", "samples=real", "seed=1", forget=2.0)]
    summary = report.summarize(report.load_records(write(tmp_path, *runs)))
    assert len(summary) == 4
    ccup = summary[summary["method"] == "ccup"].set_index("setting")
    assert ccup.loc["prompts=file samples=real dataset.templates_file=conf/prompts/example.txt",
                    "forget/acc"] == 3
    # never the mean 2
    assert ccup.loc["prompts=dataset samples=real dataset.templates_file=null", "forget/acc"] == 1
    finetune = summary[summary["method"] == "finetune"].set_index("setting")
    real, synthetic = (f"prompts=dataset samples={s} dataset.templates_file=null"
                       for s in ("real", "synthetic"))
    # method.seed is the seed
    assert finetune.loc[real, "seeds"] == 2 and finetune.loc[real, "forget/acc"] == 1.5
    assert finetune.loc[synthetic, "seeds"] == 1


def test_records_without_setting_ids_are_pooled_by_their_config_alone(tmp_path):
    """Records written before records carried their setting: the same rows from the resolved
    config."""
    runs = [composed("method=finetune", "seed=0"), composed("method=finetune", "seed=1"),
            composed("method=finetune", "method.lr=0.1")]
    legacy = [{k: v for k, v in run.items() if k not in ("setting_id", "task_id")} for run in runs]
    summary = report.summarize(report.load_records(write(tmp_path, *legacy)))
    assert (sorted(summary["seeds"]) == [1, 2]
            and summary["setting"].str.contains("method.lr=0.1").sum() == 1)
    ids = [report.setting_ids_of(run) for run in legacy]
    assert ids[0] == ids[1] != ids[2] and ids[0]["task_id"] == ids[2]["task_id"]


def test_a_long_value_reads_as_its_last_parts_or_else_by_its_hash():
    paths = ["/home/me/data/one/pets/images", "/home/me/data/two/pets/images/",
             "/home/me/data/two/cats/images"]
    templates = ["a photo of a {}.", "a drawing of a {}."]
    assert report.words([*paths, "short/path", templates, 0.5]) == [
        "…/one/pets/images", "…/two/pets/images", "…/two/cats/images", "short/path",
        f"#{storage.digest(templates)[:6]}", "0.5"]  # the last parts that tell them apart
    assert report.words([paths[0], paths[2], "/short/path"]) == [
        "…/pets/images", "…/cats/images", "/short/path"]


def folder_records(tmp_path, befores: dict[str, float]) -> list[dict]:
    """CCUP's records at alpha 0.5 and 1 on folder datasets at tmp_path/<name>/pets/images, each
    with its accuracy before forgetting."""
    runs = []
    for name, before in befores.items():
        root = write_image_folder(tmp_path / name / "pets" / "images", {"n01": [10], "n02": [20]})
        for alpha in (0.5, 1.0):
            run = composed("dataset=folder", f"dataset.root={root}", "forget.classes=[n01]",
                           f"alpha={alpha}", forget=before * (1 - alpha))
            run["metrics"]["forget/acc_before"] = before
            runs.append(run)
    return runs


def test_rows_of_two_folders_are_named_by_their_folders_and_plotted_apart(tmp_path, monkeypatch):
    results = write(tmp_path / "results", *folder_records(tmp_path, {"one": 70.0, "two": 90.0}))
    drawn = {}
    monkeypatch.setattr(plots, "KINDS",
                        {"pareto": lambda rows, path: drawn.update({path.name: rows})})
    markdown = report.write_report(results)
    labels = {"one": "dataset.root=…/one/pets/images", "two": "dataset.root=…/two/pets/images"}
    table = pd.read_csv(results / "report.csv")
    assert sorted(table["setting"].unique()) == sorted(labels.values())
    assert sorted(table[report.FULL].unique()) == [
        f"dataset.root={tmp_path / name / 'pets' / 'images'}" for name in ("one", "two")]
    assert sorted(drawn) == [f"pareto_tiny_folder_dataset.root_{name}_pets_images.png"
                             for name in ("one", "two")]  # one plot per folder, never both in one
    for name, before in (("one", 70.0), ("two", 90.0)):
        rows = drawn[f"pareto_tiny_folder_dataset.root_{name}_pets_images.png"]
        assert rows["forget/acc_before"].tolist() == [before, before]  # its own line before
        assert set(rows["task"]) == {labels[name]} and labels[name] in markdown


def test_a_difference_no_override_names_still_splits_the_rows_and_says_so(tmp_path):
    runs = [composed(), {**composed(), "id": "other", "setting_id": "f" * 16, "task_id": "e" * 16}]
    summary = report.summarize(report.load_records(write(tmp_path, *runs)))
    assert len(set(summary["setting"])) == 2
    assert all(label.startswith("#") for label in summary["setting"])


# --- paired differences ---------------------------------------------------------------------------
# Four forget sets: the oracle forgets all, CCUP leaves 1 %, "wide" 3 % (a gap 1 point wider on
# each), "mixed" 0 or 2 %.
# Seven forget sets: `wide` 2 points further from the oracle than CCUP on each, `mixed` alternately
# 1 nearer and 1 further, `near` 2 further on four of them (four pairs alone never resolve: the
# smallest Wilcoxon p is 2 / 2^4).
PAIRED = [record(method, forget, **accuracies(f, 88.0))
          for forget, mixed in zip("ABCDEFG", [0.0, 2.0, 0.0, 2.0, 0.0, 2.0, 1.0], strict=True)
          for method, f in [("retrain", 0.0), ("ccup", 1.0), ("wide", 3.0), ("mixed", mixed)]
          ] + [record("near", forget, **accuracies(3.0, 88.0)) for forget in "ABCD"]


def test_paired_differences_say_what_the_data_resolve(tmp_path):
    pairs = report.paired(report.load_records(write(tmp_path, *PAIRED)),
                          report.GAP).set_index("method")
    assert sorted(pairs.index) == ["mixed", "near", "wide"]  # neither CCUP itself nor the oracle
    # The gap is the mean of the forget and retain accuracy gaps (no cross-dataset record): 2 / 2
    # further.
    assert (pairs.loc["wide", "difference"], pairs.loc["wide", "ci_low"],
            pairs.loc["wide", "ci_high"]) == (1, 1, 1)
    # Seven positive differences: p = 2 / 2^7; Holm over three comparisons multiplies the smallest
    # by three.
    assert pairs.loc["wide", "wilcoxon p"] == pytest.approx(2 / 2**7)
    assert (pairs.loc["wide", "holm"] == pytest.approx(3 * 2 / 2**7)
            and pairs.loc["wide", "resolved"] == "ccup closer to the oracle")
    # one sign on every pair, too few pairs to say so
    assert (pairs.loc["near", "wilcoxon p"] == pytest.approx(2 / 2**4)
            and pairs.loc["near", "resolved"] == "not resolved")
    assert pairs.loc["mixed", "resolved"] == "not resolved" and pairs.loc["mixed", "pairs"] == 7
    markdown = report.write_report(tmp_path)
    assert ("## Paired with ccup at alpha = 1" in markdown
            and "| holm |" in markdown.replace("  ", ""))
    assert sorted(pd.read_csv(tmp_path / "paired.csv")["method"]) == ["mixed", "near", "wide"]


def on_another_model(rec: dict, model: str = "tiny_rn", dataset: str | None = None) -> dict:
    """The record as another model (by default the ResNet) would have it, on another dataset where
    one is named: another task."""
    config = {**rec["config"], "model": {"arch": model}}
    if dataset is not None:
        config["dataset"] = {"name": dataset}
    return {**rec, "id": f"{rec['id']}-{model}-{dataset}",
            "choices": {**rec["choices"], "model": model}, "config": config}


def test_a_second_paired_table_pools_each_setting_over_models(tmp_path):
    report.write_report(write(tmp_path, *PAIRED, *map(on_another_model, PAIRED)))
    per_model = pd.read_csv(tmp_path / "paired.csv")
    pooled = pd.read_csv(tmp_path / "paired_pooled.csv").set_index("method")
    assert sorted(per_model["model"].unique()) == ["tiny", "tiny_rn"] and len(per_model) == 6
    # each model's forget sets
    assert pooled.loc["wide", "pairs"] == 14 and pooled.loc["near", "pairs"] == 8
    # one sign on 7
    assert per_model.groupby("method")["wilcoxon p"].min()["wide"] == pytest.approx(2 / 2**7)
    # one sign on 14 pairs (tied in twos: the normal approximation)
    assert pooled.loc["wide", "wilcoxon p"] < 2e-4
    # 8 pairs say what 4 could not
    assert pooled.loc["near", "resolved"] == "ccup closer to the oracle"


def test_a_verdict_says_whether_it_holds_on_every_model_or_on_one_only(tmp_path):
    # the oracle forgets the class wholly, CCUP leaves 1 %; each model's forget accuracy per method
    # on each of two datasets' seven forget sets
    mixed = [0.0, 2.0, 0.0, 2.0, 0.0, 2.0, 1.0]  # half nearer, half further: nothing resolved
    forget = {"wide": ([3.0] * 7, [3.0] * 7), "half": ([3.0] * 7, mixed),
              "swap": ([0.0] * 7, [3.0] * 7), "never": (mixed, mixed)}
    runs = [on_another_model(record(method, name, **accuracies(f, 88.0)), model, dataset)
            for model, index in [("tiny", 0), ("tiny_rn", 1)]
            for dataset in ("fashion_mnist", "digits")
            for method, values in [("retrain", ([0.0] * 7,) * 2), ("ccup", ([1.0] * 7,) * 2),
                                   *forget.items()]
            for name, f in zip("ABCDEFG", values[index], strict=True)]
    report.write_report(write(tmp_path, *runs))
    per_model = pd.read_csv(tmp_path / "paired_per_model.csv")
    # each model's forget sets over both datasets
    assert set(per_model["pairs"]) == {14} and len(per_model) == 8
    holds = report.agreement(per_model).set_index("method")[["tiny", "tiny_rn", "resolved on"]]
    assert holds.loc["wide"].tolist() == ["ccup closer to the oracle"] * 2 + ["every model"]
    assert holds.loc["half"].tolist() == ["ccup closer to the oracle", "not resolved",
                                          "tiny only"]
    assert holds.loc["swap", "tiny"] == "closer to the oracle than ccup"
    assert holds.loc["swap", "resolved on"] == "disagree"
    assert holds.loc["never", "resolved on"] == "none"
    markdown = (tmp_path / "report.md").read_text()
    assert "## Resolved on which models" in markdown and "on each model, over its" in markdown


def test_a_verdict_on_a_model_that_did_not_test_it_is_named_untested():
    closer, unresolved = "ccup closer to the oracle", "not resolved"
    per_model = pd.DataFrame(
        [{"method": method, "role": "method", "setting": "", "classes": "test", "alpha": alpha,
          "model": model, "resolved": verdict}
         for method, alpha, verdicts in [("a", 0.5, [closer, unresolved, closer]),
                                         ("b", 1.0, [closer, "", unresolved]),
                                         ("c", 1.0, [closer, closer, closer])]
         for model, verdict in zip(["m1", "m2", "m3"], verdicts, strict=True)]
        + [{"method": "d", "role": "method", "setting": "", "classes": "test", "alpha": 1.0,
            "model": "m1", "resolved": closer}])
    table = report.agreement(per_model)
    # full strength first, then as sorted
    assert table["method"].tolist() == ["b", "c", "d", "a"]
    assert table["resolved on"].tolist() == ["m1 only (m2 not tested)", "every model",
                                             "m1 only (m2 and m3 not tested)", "m1 and m3 only"]


def test_relearning_gaps_keep_their_sign(tmp_path):
    runs = [record("retrain", **accuracies(0.0, 88.0), relearn__steps_to_half=10),
            record("ccup", **accuracies(1.0, 88.0), relearn__steps_to_half=4)]
    records = report.load_records(write(tmp_path, *runs)).set_index("method")
    # relearns sooner than after retraining
    assert records.loc["ccup", "gap/relearn/steps_to_half"] == -6
    assert records.loc["ccup", "gap/forget/acc"] == 1.0


def test_flagged_records_are_marked_on_their_row(tmp_path):
    flagged = {**GRID[0],
               "warnings": ["forget/acc before unlearning is 0.00 %, at or below chance"]}
    summary = report.summarize(report.load_records(write(tmp_path, flagged, *GRID[1:],
                                                         *ONE_SEED)))
    assert row(summary, "finetune")["flagged"] == 1 and row(summary, "ccup")["flagged"] == 0
    table = report.headline(summary)
    assert row(table, "finetune")["flagged"] == "⚠ 1" and row(table, "ccup")["flagged"] == ""
    assert "flagged" not in report.headline(report.summarize(report.load_records(
        write(tmp_path / "ok", *GRID))))


def test_error_bars_are_never_negative_where_an_interval_ends_at_its_mean():
    points = pd.DataFrame({"forget/acc": [0.1 + 0.2, 5.0], "forget/acc ci_low": [0.3, 4.0],
                           "forget/acc ci_high": [0.3, 7.0]})  # 0.1 + 0.2 is 0.30000000000000004
    assert (plots.error(points, "forget/acc") >= 0).all()
    assert plots.error(points, "forget/acc")[:, 1].tolist() == [1.0, 2.0]


def test_validation_and_test_classes_are_rows_of_their_own_and_labelled(tmp_path):
    runs = [composed("forget=pullover"), composed("forget=trouser"),
            composed("forget=sandal", forget=3.0)]
    markdown = report.write_report(write(tmp_path, *runs))
    summary = report.summarize(report.load_records(tmp_path)).set_index("classes")
    assert (summary.loc["validation", "forget sets"] == 2
            and summary.loc["test", "forget/acc"] == 3.0)
    assert "Forget classes: test and validation" in markdown
    assert sorted(report.headline(summary.reset_index())["classes"]) == ["test", "validation"]
    one = report.headline(report.summarize(report.load_records(write(tmp_path / "one", runs[2]))))
    assert "classes" not in one  # one kind of class: no column, the heading says which
