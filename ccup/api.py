"""The suite from Python: unlearn any open_clip model and score it, each method with its config's
defaults.

    from ccup import api

    model, preprocess, tokenizer = api.model()  # the embedded model; or
                                                  open_clip.create_model_and_transforms(...)
    data = api.dataset()                        # Fashion-MNIST's class names, templates and loader
    test = data.load(split="test", transform=preprocess)
    unlearned = api.unlearn(model, tokenizer, data.classnames, data.templates, forget=["sandal"])
    print(api.score(unlearned, tokenizer, test, data.classnames, data.templates, ["sandal"],
                    original=model))

The configs of `conf/` are the defaults: `api.unlearn(..., method="finetune", steps=50)` is
conf/method/finetune.yaml with `steps` changed.
"""
from collections.abc import Callable, Sequence

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import Dataset

from ccup import pipeline, quiet_lightning
from ccup.configs import compose
from ccup.method import build
from ccup.models import Clip
from ccup.task import UnlearnTask


def model(option: str = "tiny", **settings) -> tuple[torch.nn.Module, Callable, Callable]:
    """The model of conf/model/<option>.yaml, with `settings` changed
    (pretrained="/path/to/checkpoint.pt").

    Returns:
        (model, preprocess, tokenizer), as open_clip's create_model_and_transforms and get_tokenizer
        give them.
    """
    clip = instantiate(config("model", option, settings).model)
    return clip.model, clip.preprocess, clip.tokenizer


def dataset(option: str = "fashion_mnist", **settings) -> DictConfig:
    """The dataset of conf/dataset/<option>.yaml, with `settings` changed (root="my_images" for
    option="folder").

    Returns:
        Its config with `classnames`, `templates`, and `load(split, transform)`, which returns a
        torch Dataset of (image, label) pairs, labels indexing `classnames`.
    """
    return instantiate(config("dataset", option, settings).dataset)


def unlearn(model: torch.nn.Module, tokenizer: Callable, classnames: Sequence[str],
            templates: Sequence[str], forget: Sequence[str], method: str = "ccup",
            alpha: float = 1.0, train: Dataset | None = None, **settings) -> torch.nn.Module:
    """`model` with the `forget` classes unlearned; `model` itself is left as it was.

    Args:
        model, tokenizer: an open_clip model and its tokenizer.
        classnames, templates: the classes the model tells apart, and the prompts (`{}` for the
            class name) it reads them in.
        forget: the classes to unlearn, by name.
        method: an option of conf/method/ (ccup, nullspace, finetune, salun, ...), with its config's
            settings.
        alpha: the strength, from 0 (the model as it was) to 1 (fully unlearned).
        train: for methods that train on images (samples=real): the train split, (image, label)
            pairs with labels indexing `classnames`, images transformed as the model expects.
        settings: the method's settings to change, by key (lam=100, steps=50, **{"module.loss.beta":
            0.1}).

    Raises:
        ccup.errors.UserError: an unknown class, setting or method, or a method that needs `train`
            without it.
    """
    quiet_lightning()
    cfg = config("method", method, settings, alpha=alpha)
    task = UnlearnTask.of(Clip(model, None, tokenizer, "model"), classnames, templates, forget,
                          None if train is None else lambda: train)
    return pipeline.unlearn(build(cfg.method), model, task)[0]


def score(model: torch.nn.Module, tokenizer: Callable, data: Dataset, classnames: Sequence[str],
          templates: Sequence[str], forget: Sequence[str], original: torch.nn.Module | None = None,
          batch_size: int = 500) -> dict[str, float]:
    """Zero-shot accuracy of `model` on `data`, in percent: `forget/acc`, `retain/acc`, `all/acc`
    and each class's `class/<name>/acc`; with `original`, the same of the original model beside them
    as `<key>_before`.

    Args:
        data: (image, label) pairs, labels indexing `classnames`, images transformed as the model
            expects.
        original: the model `model` was unlearned from, whose text tower encoded the classes it was
            unlearned for.
    """
    quiet_lightning()
    cfg = config("eval", "[]", {},
                 **{"evaluator.batch_size": batch_size, "evaluator.cache.enabled": False})
    reference = model if original is None else original
    task = UnlearnTask.of(Clip(reference, None, tokenizer, "model"), classnames, templates, forget)
    metrics = instantiate(cfg.evaluator)(reference, model, task, data)
    kept = {key: value for key, value in metrics.items()
            if not key.startswith(("time/", "memory/"))}
    return kept if original is not None else {key: v for key, v in kept.items()
                                              if not key.endswith("_before")}


def config(group: str, option: str, settings: dict, **top) -> DictConfig:
    """The job config with `group=option`, the group's `settings` and the `top`-level keys changed,
    without logger."""
    cfg = compose(f"{group}={option}", "logger=none")
    for key, value in top.items():
        OmegaConf.update(cfg, key, value)
    for key, value in settings.items():
        OmegaConf.update(cfg, f"{group}.{key}", value)
    return cfg
