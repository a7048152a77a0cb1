"""Mirrors a job's record to Lightning loggers (W&B by default): one run per job, closed inside the job."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ccup.errors import UserError

if TYPE_CHECKING:  # Lightning is imported by the loggers a job builds, not by the command line's checks
    from pytorch_lightning.loggers import Logger


def start_logger(logger: Logger, config: dict) -> Logger:
    """Open the logger's run with the resolved config; alpha also as a string, since W&B groups 0.0 as 0. A logger
    that refuses to start (a bad setting, W&B online without a login) fails the job with one clear error."""
    from pytorch_lightning.loggers import WandbLogger

    init = getattr(logger, "_wandb_init", None)  # Lightning's W&B arguments (private: looked up, never required)
    if isinstance(logger, WandbLogger) and isinstance(init, dict):
        init.pop("anonymous", None)  # Lightning passes anonymous=None, for which W&B prints a deprecation per run
    try:
        logger.log_hyperparams({**without(config, "synonyms"), "alpha_str": str(config["alpha"])})
    except Exception as exc:
        raise UserError(f"{type(logger).__name__} could not start: {exc}: fix its settings (conf/logger/) or run "
                        "with logger=none") from exc
    return logger


def finish_loggers(loggers: list[Logger], record: dict) -> None:
    """Log the metrics of a complete record and close each run, marked failed unless the record is complete."""
    if not loggers:  # a job refused before its loggers started: Lightning is not needed to say so
        return
    from pytorch_lightning.loggers import WandbLogger

    ok = record["status"] == "complete"
    for logger in loggers:
        if ok:
            logger.log_metrics(record["metrics"])
        logger.finalize("success" if ok else "failed")
        if isinstance(logger, WandbLogger):  # Lightning leaves W&B runs open; under a sweep each job must close its own
            logger.experiment.finish(exit_code=0 if ok else 1)


def without(config, key: str):
    """The config without `key` at any depth: every class's synonym lists would bury the settings runs differ in."""
    if isinstance(config, dict):
        return {k: without(v, key) for k, v in config.items() if k != key}
    if isinstance(config, list):
        return [without(v, key) for v in config]
    return config
