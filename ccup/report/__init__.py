"""Tables and plots from result records, in four steps, a module each: records to rows (records,
with the setting labels of labels), rows to statistics (statistics), statistics to tables (tables),
tables to files (files). `python -m ccup.report [results_dir ...]` reads `<dir>/records/*.json` and
writes report.{md,csv,tex} and the plots (PNG) into the first results_dir."""
from ccup.report.files import main, write_plots, write_report
from ccup.report.labels import FULL, words
from ccup.report.records import (
    ANCHOR,
    CROSS,
    GAP,
    HEADLINE,
    NO_ORACLE,
    ORACLE,
    ORIGINAL,
    learnt_from,
    load_records,
    records_table,
    setting_ids_of,
)
from ccup.report.statistics import interval, leakage, metric_columns, paired, summarize
from ccup.report.tables import (
    agreement,
    cell,
    fmt,
    headline,
    paired_table,
    render,
    time_spent,
    with_intervals,
)

__all__ = ["ANCHOR", "CROSS", "FULL", "GAP", "HEADLINE", "NO_ORACLE", "ORACLE", "ORIGINAL",
           "agreement", "cell", "fmt", "headline", "interval", "leakage", "learnt_from",
           "load_records", "main", "metric_columns", "paired", "paired_table", "records_table",
           "render", "setting_ids_of", "summarize", "time_spent", "with_intervals", "words",
           "write_plots", "write_report"]
