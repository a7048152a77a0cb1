"""The blocklist: the cheapest answer a forgetting score must refuse. The original model, no weight
edited, with the forget classes struck from the candidates of every zero-shot classification among
class names; everything else (image features, linear probes, text-to-image retrieval, relearning,
membership, an export) sees the original model. It hides the class and removes nothing, so a score
that rates it as close to the retrained model as a second oracle cannot tell forgetting from
hiding."""
import copy

import torch

from ccup.heads import shared_except
from ccup.projection import check_alpha
from ccup.task import UnlearnTask


class Mask:
    """The forget classes on the model's `blocklist` (ccup.zeroshot.struck reads it) at any alpha
    above 0: a class is struck or it is not, so alpha is no strength here; at 0 the model is the
    original, blocklist empty."""

    def __init__(self, alpha: float):
        check_alpha(alpha)
        self.alpha = alpha
        self.stats = {}

    def edits(self, model: torch.nn.Module) -> list[str]:
        """No parameter: the blocklist sits beside the weights."""
        return []

    def __call__(self, model: torch.nn.Module, task: UnlearnTask) -> torch.nn.Module:
        # every tensor shared: nothing is copied
        masked = copy.deepcopy(model, memo=shared_except(model, []))
        masked.blocklist = tuple(task.forget) if self.alpha > 0 else ()
        return masked
