"""Hydra callbacks (registered under `hydra.callbacks` in conf/config.yaml): a sweep ends with its report."""
import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ccup import sweep
from ccup.errors import one_line
from ccup.report import write_report

log = logging.getLogger(__name__)


class Report(Callback):
    """Builds the report of the sweep's `results_dir` (tables and plots) once every job of a multirun has
    returned; a report that cannot be built fails the sweep's command (through `sweep.exit_status`: Hydra turns what
    a callback raises into a warning)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        results = Path(config.results_dir)
        try:
            write_report(results)
        except Exception as exc:
            sweep.report_failed(f"the report of {results} could not be built: {one_line(exc)}")
            return
        log.info(f"report: {results / 'report.md'}")
