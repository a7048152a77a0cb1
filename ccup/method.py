"""CCUP as a method: the contract every method follows is `method(model, task) -> unlearned model`."""
import torch

from ccup.adapter import fold_projection, projection_names
from ccup.errors import UserError
from ccup.projection import ccup_factors, check_alpha, check_weights
from ccup.task import UnlearnTask


class CCUP:
    """Consistent Class Unlearning Projection: folds W_alpha(lam, mu) into the image tower's final projection.

    lam = inf and mu = 0 is the plain nullspace projection the paper generalises.
    """

    def __init__(self, alpha: float, lam: float, mu: float, rtol: float = 1e-6):
        check_alpha(alpha)
        check_weights(lam, mu)
        if not (isinstance(rtol, int | float) and 0 < rtol < 1):
            raise UserError(f"method.rtol (singular values kept, relative to the largest) lies in (0, 1), got {rtol!r}")
        self.alpha, self.lam, self.mu, self.rtol = alpha, lam, mu, rtol
        self.stats = {}  # what a method reports beside the evaluator's metrics; CCUP has nothing to add

    def __call__(self, model: torch.nn.Module, task: UnlearnTask) -> torch.nn.Module:
        T = task.classifier
        W = ccup_factors(T[:, task.forget_idx], T[:, task.retain_idx], self.lam, self.mu, self.rtol)
        return fold_projection(model, W.with_strength(self.alpha))

    def edits(self, model: torch.nn.Module) -> list[str]:
        """Names of the parameters this method may change."""
        return projection_names(model)
