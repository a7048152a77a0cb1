"""Image features before the final projection, computed once per (image tower, dataset) and cached
on disk.

CCUP, the nullspace projection and any method that edits only the final image projection (or the
text tower) leave these features unchanged, so every such configuration of a sweep is scored from
one encoding pass.
"""
import weakref
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from ccup import storage
from ccup.datasets import dataset_key, materialize
from ccup.heads import projection_names, projection_removed
from ccup.models import same_weights, weights_digest
from ccup.provenance import versions
from ccup.trainers import callbacks


class PreProjectionEncoder(pl.LightningModule):
    """`Trainer.predict` yields (features before the final projection (B, D), labels (B,)) per
    batch."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def predict_step(self, batch, batch_idx):
        images, labels = batch
        with projection_removed(self.model):
            return self.model.visual(images), labels


def tower_digest(model: torch.nn.Module) -> str:
    """Identity of the image features: the image tower's weights without the final projection.
    Remembered per model until one of its tensors changes in place, so a sweep hashes its model
    once."""
    versions = tuple(tensor._version for tensor in model.visual.state_dict(keep_vars=True).values())
    remembered = _digests.get(model)
    if remembered is None or remembered[0] != versions:
        skip = [name.removeprefix("visual.") for name in projection_names(model)]
        remembered = _digests[model] = (versions, weights_digest(model.visual, skip=skip))
    return remembered[1]


_digests: "weakref.WeakKeyDictionary[torch.nn.Module, tuple]" = weakref.WeakKeyDictionary()


def same_tower(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Whether two models compute the same image features before their final projections: their
    other image-tower tensors are shared (as after `fold_projection`) or equal."""
    skip = set(projection_names(a))
    return same_weights(a, b,
                        [name for name in a.state_dict() if name.startswith("visual.")
                         and name not in skip])


# What computes the features besides the tower and the images: another release may round
# differently.
LIBRARIES = ("torch", "torchvision", "open_clip_torch")


class FeatureCache:
    """Where the original models' features live: `root/<tower>-<setting>.pt`, the setting being the
    dataset, how the features are computed (device type, precision) and the libraries that computed
    them. `enabled=False` bypasses the cache."""

    def __init__(self, root: str, enabled: bool = True):
        self.root, self.enabled = Path(root), enabled

    def path(self, model: torch.nn.Module, dataset: Dataset, numerics: str) -> Path | None:
        """Where the entry lives; None when the cache is off or the dataset cannot be identified
        across runs. `numerics` names how features are computed: bf16 features must not stand in for
        fp32 ones, nor a GPU's for a CPU's."""
        identity = dataset_key(dataset)
        if not self.enabled or identity is None:
            return None
        setting = {"dataset": identity, "numerics": numerics, "versions": versions(LIBRARIES)}
        return self.root / f"{tower_digest(model)[:20]}-{storage.digest(setting, 20)}.pt"


def read_features(path: Path, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A cache entry's (N, D) features and (N,) labels; ValueError unless it holds `size` of
    each."""
    entry = storage.load(path)
    features, labels = entry["features"], entry["labels"]
    if not (features.ndim == 2 and features.shape[0] == labels.shape[0] == size):
        raise ValueError(f"holds {tuple(features.shape)} features for a dataset of {size}")
    return features, labels


def write_features(entry: tuple[torch.Tensor, torch.Tensor], path: Path) -> None:
    features, labels = entry
    storage.save({"features": features, "labels": labels}, path)


def encode(trainer: pl.Trainer, model: torch.nn.Module,
           loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass of `model`'s image tower over `loader`: (N, D) features before the final projection,
    (N,) labels."""
    features, labels = zip(*trainer.predict(PreProjectionEncoder(model), loader), strict=True)
    return torch.cat(features).float().cpu(), torch.cat(labels).cpu()


# What an evaluation is given to see images with: `features(model, dataset)` -> ((N, D) features
# before the final projection, (N,) labels). Features below is the evaluator's; a test may pass any
# function of that shape.
FeaturesOf = Callable[[torch.nn.Module, Dataset], tuple[torch.Tensor, torch.Tensor]]


class Features:
    """What the evaluator and every evaluation see of a job's image towers: `features(model,
    dataset)` gives (N, D) features before the final projection and (N,) labels.

    The original model's are read from the disk cache, or encoded once into it; a model whose image
    tower is the original's but for the final projection (CCUP, the nullspace projection) gets the
    very same tensors; any other tower (fine-tuned) is encoded anew and never cached: it is one
    job's alone."""

    def __init__(self, original: torch.nn.Module, trainer: Callable[[], pl.Trainer],
                 batch_size: int, num_workers: int, cache: FeatureCache):
        self.original = original
        self.trainer = trainer
        self.cache = cache
        self.batch_size = batch_size
        self.num_workers = num_workers
        # The original's features of each dataset this job asked for, while the dataset lives: keyed
        # by the object, since a dataset built and dropped in a loop may hand its id to the next
        # one.
        self.original_features: weakref.WeakKeyDictionary[Dataset, tuple] = (
            weakref.WeakKeyDictionary())

    def __call__(self, model: torch.nn.Module,
                 dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
        if not same_tower(self.original, model):
            return self.encode(model, dataset)
        if dataset not in self.original_features:
            self.original_features[dataset] = self.cached(dataset)
        return self.original_features[dataset]

    def cached(self, dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
        trainer = self.trainer(callbacks=callbacks())
        path = self.cache.path(self.original, dataset,
                               f"{trainer.strategy.root_device.type} {trainer.precision}")
        entry, _ = storage.cached(path, lambda: self.encode(self.original, dataset, trainer),
                                  read=partial(read_features, size=len(dataset)),
                                  write=write_features)
        return entry

    def encode(self, model: torch.nn.Module, dataset: Dataset,
               trainer: pl.Trainer | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        loader = DataLoader(preprocessed(dataset), batch_size=self.batch_size,
                            num_workers=self.num_workers)
        return encode(trainer or self.trainer(callbacks=callbacks()), model, loader)


# Preprocessed evaluation images kept in memory, per process, by dataset_key (the transform is part
# of it), most recently used last, within PIXEL_BUDGET bytes: each model a job scores sees the same
# images, and a sweep's worker runs job after job. Decoding and preprocessing a small image costs
# more than encoding it with a small tower; ViT-B/16's 224-px images are kept where they fit.
PIXEL_BUDGET = 512 * 2**20
_kept: OrderedDict[str, TensorDataset] = OrderedDict()


def preprocessed(dataset: Dataset) -> Dataset:
    """`dataset` as tensors of its transformed images and labels, made once per process where it can
    be identified across calls and fits PIXEL_BUDGET (the same batches as the dataset's own, for a
    transform that draws nothing at random, as an evaluation's does); else `dataset` itself."""
    key = dataset_key(dataset)
    if key is None or len(dataset) == 0:
        return dataset
    if key in _kept:
        _kept.move_to_end(key)
        return _kept[key]
    image, _ = dataset[0]
    if len(dataset) * image.nbytes > PIXEL_BUDGET:
        return dataset
    _kept[key] = materialize(dataset)
    while sum(kept.tensors[0].nbytes for kept in _kept.values()) > PIXEL_BUDGET:
        _kept.popitem(last=False)
    return _kept[key]
