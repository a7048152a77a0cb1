"""The Lightning Trainer as every part of the suite builds one: settings checked as a job starts, a
progress bar where a person watches and progress lines where no one does."""
import sys
from collections.abc import Callable

import torch

from ccup.errors import UserError, one_line


def on_terminal() -> bool:
    """Whether a person watches the output, a terminal: a progress bar for them, none in a log file
    (a sweep's jobs, SLURM), where each redraw would append to one endless line."""
    return sys.stdout.isatty()


PROGRESS_EVERY_S = 15.0  # how often a Trainer no one watches on a terminal says how far it has got


def callbacks(*own) -> list:
    """The callbacks of every Trainer the suite builds: `own`, and off a terminal (`on_terminal`) a
    progress line every PROGRESS_EVERY_S seconds (ccup.progress.Progress); on a terminal,
    Lightning's bar instead (`enable_progress_bar`)."""
    if on_terminal():
        return list(own)
    from ccup.progress import Progress  # Lightning: imported by jobs that train, not every command

    return [*own, Progress(PROGRESS_EVERY_S)]


def check_trainer(trainer: Callable[[], object], key: str) -> None:
    """Refuse Trainer settings that Lightning refuses (an accelerator this machine lacks, devices=0,
    an unknown precision) as the job starts, in one line naming the keys, not halfway through it:
    build one Trainer now. The global flags a Trainer sets (deterministic algorithms, cuDNN
    benchmark) are put back: they belong to the training that builds its own."""
    flags = (torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(), torch.backends.cudnn.benchmark)
    try:
        trainer()
    except Exception as exc:
        raise UserError(f"Lightning refuses the Trainer settings {key}.*: {one_line(exc)}") from exc
    finally:
        torch.use_deterministic_algorithms(flags[0], warn_only=flags[1])
        torch.backends.cudnn.benchmark = flags[2]
