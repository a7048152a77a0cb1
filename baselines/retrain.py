"""Retrain, the gold standard of unlearning (docs/method.md#retrain-the-oracle): the model trained
anew with its own recipe on its training data minus the forget classes' images. Exact unlearning by
definition; the report reads every other method as its gap to this one."""
import inspect
from collections.abc import Sequence

import torch
from hydra.utils import get_method, instantiate
from omegaconf import DictConfig, OmegaConf

from baselines.edit import interpolate
from ccup.errors import UserError
from ccup.loggers import handed
from ccup.projection import check_alpha
from ccup.task import UnlearnTask


class Retrain:
    """The oracle: `recipe` (the model's own config, `${model}`) trained again with the forget
    classes' train images left out, once per recipe and forget set (the recipe's cache keeps it),
    then theta_alpha = lerp(theta_0, theta_retrain, alpha). `seed` trains it under another seed than
    the recipe's own (None: the recipe's): a second oracle, whose gap to the first is how far two
    exact unlearnings lie apart. `unnamed` also leaves the forget classes' names out of the caption
    contrast (a corpus that never names them; without it their names stay, as negatives, as in a
    corpus without their photos). `max_steps` cuts the retraining short (None: the whole recipe, as
    the model was trained), for quick tests only: an oracle trained for less is no oracle. `loggers`
    (the job's, which run.py hands over) get the retraining's curves, when it trains."""

    def __init__(self, alpha: float, recipe: DictConfig, seed: int | None = None,
                 unnamed: bool = False, max_steps: int | None = None, loggers: Sequence = ()):
        check_alpha(alpha)
        takes = inspect.signature(get_method(recipe._target_)).parameters
        if "exclude" not in takes:
            weights = f" ({recipe.pretrained})" if recipe.get("pretrained") else ""  # hf: none
            raise UserError(f"method=retrain trains the model again from its recipe, but "
                            f"{recipe.get('name')!r}{weights} comes with pretrained weights whose "
                            "training data and recipe the suite does not have: retrain the "
                            "embedded model (model=tiny) instead")
        if unnamed and "unnamed" not in takes:
            raise UserError(f"method.unnamed: {recipe._target_} cannot leave class names out of "
                            "its training")
        if max_steps is not None and not max_steps >= 1:
            raise UserError("method.max_steps must be at least 1 (or null for the whole recipe), "
                            f"got {max_steps}")
        self.alpha = alpha
        self.unnamed = unnamed
        self.max_steps = max_steps
        self.loggers = list(loggers)
        self.recipe = OmegaConf.to_container(recipe, resolve=True)
        if seed is not None:
            self.recipe["seed"] = seed
        self.stats = {}

    def edits(self, model: torch.nn.Module) -> list[str]:
        """Names of the parameters this method may change: all of them."""
        return [name for name, _ in model.named_parameters()]

    def __call__(self, model: torch.nn.Module, task: UnlearnTask) -> torch.nn.Module:
        unnamed = {"unnamed": list(task.forget)} if self.unnamed else {}
        oracle = instantiate(self.recipe, exclude=list(task.forget), max_steps=self.max_steps,
                             **unnamed, **handed(self.recipe, self.loggers))
        # The cost is the training's, also when the cache had it: the oracle is what every method
        # saves.
        self.stats = {"time/unlearn_s": oracle.info["time/train_s"],
                      "unlearn/cache_hit": oracle.info["cache_hit"]}
        weights = oracle.model.state_dict()
        return interpolate(model, {name: weights[name] for name in self.edits(model)}, self.alpha)
