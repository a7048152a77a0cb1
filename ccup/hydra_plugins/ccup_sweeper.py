"""Hydra's Optuna sweeper, resumable (`hydra/sweeper=ccup_optuna`, conf/hparams_search/).

A Hydra plugin, installed as `hydra_plugins.ccup_sweeper` beside the launcher (pyproject.toml);
Optuna itself is imported only when a search starts.

Optuna's sweeper reloads a study from its storage but then runs `n_trials` more, and a sampler
seeded as before proposes the first run's settings again. This one counts the study's finished
trials (complete or failed; a trial killed while running is run again) against `n_trials`, and seeds
the sampler with `seed` plus that count: a killed search, run again, goes on where it stopped, and a
finished one only reports its best trial. An sqlite storage's folder is made first.
"""
from dataclasses import dataclass
from pathlib import Path

from hydra.core.config_store import ConfigStore
from hydra.utils import instantiate
from hydra_plugins.hydra_optuna_sweeper import optuna_sweeper
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf

SQLITE = "sqlite:///"


@dataclass
class ResumableOptunaSweeperConf(OptunaSweeperConf):
    _target_: str = "hydra_plugins.ccup_sweeper.OptunaSweeper"
    # the sampler's config reaches the sweeper, which seeds it when the search starts
    _recursive_: bool = False


ConfigStore.instance().store(group="hydra/sweeper", name="ccup_optuna",
                             node=ResumableOptunaSweeperConf, provider="ccup")


class OptunaSweeper(optuna_sweeper.OptunaSweeper):
    def __init__(self, sampler, **settings) -> None:
        super().__init__(sampler=None, **settings)
        self.sampler_config = sampler

    def sweep(self, arguments: list[str]) -> None:
        search = self.sweeper
        finished = finished_trials(search.storage, search.study_name)
        search.n_trials = max(0, search.n_trials - finished)
        search.sampler = instantiate(self.sampler_config,
                                     seed=(self.sampler_config.seed or 0) + finished)
        return super().sweep(arguments)


def finished_trials(storage: str | None, study_name: str | None) -> int:
    """How many trials of the study in `storage` ended, complete or failed; 0 where there is no such
    study."""
    import optuna

    if storage is None:
        return 0
    if storage.startswith(SQLITE):
        Path(storage.removeprefix(SQLITE)).parent.mkdir(parents=True, exist_ok=True)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:  # no study of that name yet
        return 0
    ended = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    return len(study.get_trials(deepcopy=False, states=ended))
