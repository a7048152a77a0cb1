"""Hydra callbacks (registered under `hydra.callbacks` in conf/config.yaml): a sweep ends with its report."""
import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ccup.report import write_report

log = logging.getLogger(__name__)


class Report(Callback):
    """Builds the report of the sweep's `results_dir` (tables and plots) once every job of a multirun has
    returned; a report that cannot be built fails the sweep's command."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        results = Path(config.results_dir)
        write_report(results)
        log.info(f"report: {results / 'report.md'}")
