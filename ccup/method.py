"""What every method of conf/method/ is (`Method`), how a config builds one (`build`, reading its
`role`), and the base of the methods that are one linear map folded into the image tower
(`Projection`): CCUP, the nullspace projection it generalises, LEACE."""
import copy
from typing import Protocol, runtime_checkable

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from ccup.errors import UserError
from ccup.heads import fold_projection, projection_names
from ccup.projection import LowRank, ccup_factors, check_alpha, check_lam_mu
from ccup.roles import role_of
from ccup.task import UnlearnTask


@runtime_checkable
class Method(Protocol):
    """A method, as its config's `_target_` builds it (refusing bad settings there, before any work)
    and a job uses it: called once, then its `stats` read.

    Attributes:
        alpha: the strength in [0, 1]: 0 gives back the model's weights bit for bit, 1 the fully
            unlearned model.
        stats: what the method reports beside the evaluator's metrics once called, e.g.
            `unlearn/steps` ({} for nothing); a job records them.
    """

    alpha: float
    stats: dict

    def __call__(self, model: torch.nn.Module, task: UnlearnTask) -> torch.nn.Module:
        """The unlearned model: a new module; `model` is left as it was."""

    def edits(self, model: torch.nn.Module) -> list[str]:
        """Names of the parameters of `model` a call may change; all others stay bit for bit."""


def build(node: DictConfig, **given) -> Method:
    """The method a conf/method/ config describes: its `_target_` built with its settings and the
    keywords `given` (the job's loggers, for a method that trains), `role` aside (the report's, not
    the method's). The config itself is left as it is."""
    role_of(node)
    # a shallow copy keeps its place in the config: `${alpha}` still resolves
    settings = copy.copy(node)
    with open_dict(settings):
        settings.pop("role", None)
    return instantiate(settings, **given)


class Projection:
    """A method that folds one linear map W of the joint embedding space into the image tower's
    final projection (ccup.heads), as W_alpha = I - alpha (I - W). A subclass gives
    `unlearning_map`, W at full strength; a new projection is that one function."""

    def __init__(self, alpha: float):
        check_alpha(alpha)
        self.alpha = alpha
        self.stats = {}

    def unlearning_map(self, model: torch.nn.Module, task: UnlearnTask) -> LowRank:
        raise NotImplementedError

    def __call__(self, model: torch.nn.Module, task: UnlearnTask) -> torch.nn.Module:
        return fold_projection(model, self.unlearning_map(model, task).with_strength(self.alpha))

    def edits(self, model: torch.nn.Module) -> list[str]:
        """The final image projection (`visual.proj`, a ResNet's `attnpool.c_proj`, a timm tower's
        `head.proj`)."""
        return projection_names(model)


class CCUP(Projection):
    """Consistent Class Unlearning Projection: W(lam, mu) from the class text embeddings alone
    (docs/method.md).

    lam = inf and mu = 0 is the plain nullspace projection the paper generalises.
    """

    def __init__(self, alpha: float, lam: float, mu: float, rtol: float = 1e-6):
        super().__init__(alpha)
        check_lam_mu(lam, mu)
        if not (isinstance(rtol, int | float) and 0 < rtol < 1):
            raise UserError("method.rtol (singular values kept, relative to the largest) lies in "
                            f"(0, 1), got {rtol!r}")
        self.lam = lam
        self.mu = mu
        self.rtol = rtol

    def unlearning_map(self, model: torch.nn.Module, task: UnlearnTask) -> LowRank:
        T = task.classifier
        return ccup_factors(T[:, task.forget_idx], T[:, task.retain_idx], self.lam, self.mu,
                            self.rtol)
