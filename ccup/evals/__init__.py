"""Evaluations beyond forget and retain accuracy, chosen with the `eval` config group
(`conf/eval/<name>.yaml`, the evaluation's settings nested under its name, `_target_` first). The
evaluator runs each after its own scores."""
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import Dataset

from ccup.errors import UserError
from ccup.features import FeaturesOf
from ccup.task import UnlearnTask


@runtime_checkable
class Evaluation(Protocol):
    """An evaluation, as its config's `_target_` builds it (refusing bad settings there, before any
    work).

    Attributes:
        columns: the metrics the report shows of it, in order, each with its `_before` beside it
            where the evaluation measures one. It may return more (kept in the records and
            report.csv, not in the tables).
    """

    columns: tuple[str, ...]

    def __call__(self, features: FeaturesOf, original: torch.nn.Module, unlearned: torch.nn.Module,
                 task: UnlearnTask, test_set: Dataset) -> dict[str, float]:
        """The metrics of `unlearned` (and of `original` under `<metric>_before`).

        Args:
            features: `features(model, dataset)` gives a model's (N, D) image features before the
                final projection and the (N,) labels; the original's are cached, and reused by a
                model whose image tower is the same (ccup.features.Features).
            original: the model before unlearning.
            unlearned: the model the method returned.
            task: the classes, the forget set and the class text embeddings.
            test_set: the dataset split the evaluator scored.

        Returns:
            {metric: value}, names as `<evaluation>/<what>`, e.g. `leak/probe_auroc`.
        """


def check_config(evals: DictConfig) -> None:
    """Refuses an `eval` config that is not {name: {_target_: ..., settings}}, e.g. one written flat
    like a method's.

    Raises:
        UserError: naming the top-level key that is not an evaluation.
    """
    for name, node in evals.items():
        if not (OmegaConf.is_dict(node) and "_target_" in node):
            raise UserError(f"eval: `{name}` is not an evaluation: a conf/eval/ file nests its "
                            "settings under the evaluation's name (a line `myeval:`, then "
                            "`_target_: ...` and the settings indented), as "
                            "conf/eval/probe.yaml does")


def check_evaluations(evals: Mapping) -> None:
    """Refuses built evaluations that do not follow `Evaluation`.

    Raises:
        UserError: naming the first that does not.
    """
    for name, evaluation in evals.items():
        if not isinstance(evaluation, Evaluation):
            raise UserError(f"eval.{name} ({type(evaluation).__name__}) is not an evaluation: it "
                            "needs `columns` and `__call__(features, original, unlearned, task, "
                            "test_set)` (ccup.evals.Evaluation)")
