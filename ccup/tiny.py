"""The embedded models: tiny open_clip CLIPs trained here on Fashion-MNIST and digits, a ViT
(ccup-tiny-p7, the default) and a ModifiedResNet (ccup-tiny-rn), by one recipe. Each default
recipe's weights ship in `ccup/weights/`, so every machine scores the same models; any other recipe
(another seed, the oracle without the forget classes) is trained once and cached.

    python -m ccup.tiny                 # make tiny: train anew, compare with the shipped weights
    python -m ccup.tiny --model tiny_rn --ship   # the ResNet, then ship it (a changed recipe)
"""
import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset

from ccup import quiet_lightning, storage
from ccup.datasets import labels_of, materialize
from ccup.errors import UserError
from ccup.models import MODEL_CONFIGS, Clip, load_clip
from ccup.provenance import provenance
from ccup.trainers import callbacks, on_terminal
from ccup.zeroshot import class_embeddings, zero_shot_accuracy, zero_shot_logits

log = logging.getLogger(__name__)
# <arch>-<recipe digest>.pt and .json: read before any cache
SHIPPED = Path(__file__).parent / "weights"
# points of zero-shot accuracy between shipped and retrained weights (CPUs differ in the last bits)
TOLERANCE = 1.0


class CaptionContrast(pl.LightningModule):
    """Image-text contrast against templated captions: each step draws, for every captioned class,
    one template and one of its names (class name or synonym) and classifies every image against
    those captions (the CLIP loss with the batch's duplicate captions merged). `caption_of` maps a
    class label to its caption's column: the classes left unnamed have none, and none of their
    images is trained on."""

    def __init__(self, model, tokens: torch.Tensor, names: torch.Tensor, caption_of: torch.Tensor,
                 lr: float, total_steps: int):
        super().__init__()
        self.model = model
        self.lr = lr
        self.total_steps = total_steps
        self.register_buffer("tokens", tokens)  # (T templates, N names, K captioned classes, L)
        # (K,) how many of the N names each captioned class really has
        self.register_buffer("names", names)
        # (C,) column of each class's caption, -1 for none
        self.register_buffer("caption_of", caption_of)

    def training_step(self, batch, batch_idx):
        images, labels = batch
        # (K, d)
        captions = self.model.encode_text(draw_captions(self.tokens, self.names), normalize=True)
        logits = zero_shot_logits(self.model, images, captions.T)  # (B, K)
        labels = self.caption_of[labels]  # each image's caption column
        loss = F.cross_entropy(logits, labels)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/acc", (logits.argmax(dim=1) == labels).float().mean() * 100)  # the batch's
        return loss

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.lr, weight_decay=0.1)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, self.lr,
                                                       total_steps=self.total_steps)
        return [optimizer], [{"scheduler": schedule, "interval": "step"}]


def draw_captions(tokens: torch.Tensor, names: torch.Tensor) -> torch.Tensor:
    """(C, L) one caption per class from (T, N, C, L) tokens: a template uniformly, and a name
    uniformly among the class's own `names[c]` (never a cycled copy, which would favour some
    names)."""
    num_templates, _, num_classes, _ = tokens.shape
    template = torch.randint(num_templates, (num_classes,), device=tokens.device)
    name = (torch.rand(num_classes, device=tokens.device) * names).long()
    return tokens[template, name, torch.arange(num_classes, device=tokens.device)]


def load_tiny(arch: str, train_data: Mapping, repeats: Mapping[str, int], epochs: int,
              batch_size: int, lr: float, seed: int, cache_dir: str, exclude: Sequence[str] = (),
              unnamed: Sequence[str] = (), max_steps: int | None = None, shipped: bool = True,
              loggers: Sequence = ()) -> Clip:
    """The tiny CLIP of architecture `arch` (ccup/model_configs/<arch>.json) trained on the train
    splits of `train_data` (dataset configs by name: name, classnames, templates, optional synonyms,
    load) side by side, with the given recipe; trained once, then read from `cache_dir`. A dataset's
    train split is repeated `repeats[name]` times (default once), to balance small ones.

    `exclude` names classes whose train images are left out (the retrained oracle of unlearning
    them); their names stay among the captions, as negatives, as a web corpus without their photos
    would still name them, unless they are also `unnamed`: then their names leave the caption
    contrast too, as a corpus that never names them. `max_steps` cuts training short (None: every
    epoch), for quick tests. `shipped=False` ignores the weights in SHIPPED. `loggers` (Lightning's)
    get the training's curves, when it trains. `clip.info` holds the recipe, the training time and
    the commit of the code that trained them."""
    datasets = list(train_data.values())
    repeats = {data.name: repeats.get(data.name, 1) for data in datasets}
    check_excluded(exclude, datasets)
    if not set(unnamed) <= set(exclude):
        raise UserError(f"cannot leave the names of {sorted(set(unnamed) - set(exclude))} out of "
                        "the captions and keep their images: a class left unnamed is left out of "
                        "the training images too (exclude)")
    recipe = recipe_of(arch, datasets, repeats, epochs, batch_size, lr, seed, exclude, max_steps,
                       unnamed)
    name = weights_name(arch, recipe)
    ship, cache = SHIPPED / name, Path(cache_dir) / "models" / name
    path = ship if shipped and ship.exists() and ship.with_suffix(".json").exists() else cache

    def train() -> dict:
        # from weight init to the last batch, whatever ran before (a read that failed)
        torch.manual_seed(seed)
        clip = load_clip(arch)
        log.info("training the tiny CLIP once (cached at %s)", path)
        start = time.perf_counter()
        loader = DataLoader(training_set(datasets, repeats, clip.preprocess, exclude),
                            batch_size=batch_size, shuffle=True, drop_last=True)
        steps = epochs * len(loader) if max_steps is None else min(max_steps, epochs * len(loader))
        module = CaptionContrast(clip.model.train(),
                                 *caption_tokens(datasets, clip.tokenizer, unnamed), lr, steps)
        # CPU on every machine: the cached weights must not depend on which device trained them.
        trainer = pl.Trainer(max_epochs=epochs, max_steps=steps, accelerator="cpu",
                             deterministic=True, logger=list(loggers) or False,
                             callbacks=callbacks(), enable_checkpointing=False,
                             enable_model_summary=False, enable_progress_bar=on_terminal())
        trainer.fit(module, loader)
        clip.model.eval()
        return {"clip": clip,
                "info": {"recipe": recipe, "time/train_s": time.perf_counter() - start,
                         **provenance()}}

    # reading or training, the job's own seeded stream is left untouched
    with torch.random.fork_rng():
        weights, cache_hit = storage.cached(path, train, read=partial(read_weights, arch=arch),
                                            write=write_weights)
    clip = weights["clip"]
    clip.info = {**weights["info"], "cache_hit": int(cache_hit)}
    return clip


def read_weights(path: Path, arch: str) -> dict:
    """A cache entry of trained weights: the `arch` model open_clip loads from the state dict at
    `path`, and beside it (`.json`) the recipe, the training time and the commit of the code that
    trained them. Raises where either does not load: the entry is trained again."""
    return {"clip": load_clip(arch, pretrained=str(path)),
            "info": json.loads(path.with_suffix(".json").read_text())}


def write_weights(weights: dict, path: Path) -> None:
    """The `.json` first: a reader that finds the `.pt` finds its `.json` too."""
    storage.write_bytes(json.dumps(weights["info"], indent=1).encode(), path.with_suffix(".json"))
    storage.save(weights["clip"].model.state_dict(), path)


def recipe_of(arch: str, datasets: Sequence, repeats: Mapping[str, int], epochs: int,
              batch_size: int, lr: float, seed: int, exclude: Sequence[str] = (),
              max_steps: int | None = None, unnamed: Sequence[str] = ()) -> dict:
    """Everything the trained weights depend on, as JSON: the architecture (its config, not its
    name), the training settings and the data. `unnamed` enters only where it names a class, so
    every recipe before it keeps its weights' name."""
    recipe = dict(arch=json.loads((MODEL_CONFIGS / f"{arch}.json").read_text()), epochs=epochs,
                  batch_size=batch_size, lr=lr, seed=seed, exclude=sorted(exclude),
                  max_steps=max_steps,
                  data=[dict(name=data.name, classnames=list(data.classnames),
                             names=class_names(data), templates=list(data.templates),
                             repeats=repeats.get(data.name, 1)) for data in datasets])
    return {**recipe, "unnamed": sorted(unnamed)} if unnamed else recipe


def weights_name(arch: str, recipe: dict) -> str:
    """The file name of a recipe's weights, shipped or cached."""
    return f"{arch}-{storage.digest(recipe)}.pt"


def check_excluded(exclude: Sequence[str], datasets: Sequence) -> None:
    """Excluded classes are classes of the training data: a name it never had would retrain the same
    model."""
    known = {name for data in datasets for name in data.classnames}
    if unknown := [name for name in exclude if name not in known]:
        raise UserError(f"cannot leave out {unknown}: the model's training data has no such class "
                        f"({sorted(known)})")


def class_names(data) -> list[list[str]]:
    """Each class's caption names: its class name, then its synonyms, where the dataset config lists
    them."""
    synonyms = getattr(data, "synonyms", None) or {}
    return [[name, *synonyms.get(name, ())] for name in data.classnames]


class TrainingSplit(Dataset):
    """A train split as training reads it: labels shifted by `offset` (`targets`, known without
    transforming an image), each image transformed when first read and then kept, so that every
    epoch after the first reads it from memory and a training cut to a few steps transforms only the
    images it reads."""

    def __init__(self, dataset: Dataset, offset: int):
        self.dataset, self.items = dataset, {}
        self.targets = [label + offset for label in labels_of(dataset)]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        if index not in self.items:
            self.items[index] = self.dataset[index][0], self.targets[index]
        return self.items[index]


def training_set(datasets: Sequence, repeats: Mapping[str, int], transform: Callable,
                 exclude: Sequence[str] = ()) -> ConcatDataset:
    """The train splits side by side, without the images of `exclude`d classes: labels of each
    dataset shifted past the classes of the ones before it."""
    parts = []
    offset = 0
    for data in datasets:
        split = TrainingSplit(data.load(split="train", transform=transform), offset)
        left_out = {offset + c for c, name in enumerate(data.classnames) if name in exclude}
        kept = [i for i, label in enumerate(split.targets) if label not in left_out]
        parts += [Subset(split, kept)] * repeats[data.name]
        offset += len(data.classnames)
    return ConcatDataset(parts)


def caption_tokens(datasets: Sequence, tokenizer: Callable,
                   unnamed: Sequence[str] = ()) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(T, N, K, L) caption tokens of the K classes not `unnamed`, each captioned with its own
    dataset's templates and its own names, both cycled to the longest list; (K,) the number of names
    of each, so that draws never pick a cycled one; and (C,) the caption column of each of the C
    classes, -1 for an unnamed one."""
    classes = [(name, words, data.templates) for data in datasets
               for name, words in zip(data.classnames, class_names(data), strict=True)]  # C
    # K
    named = [(words, templates) for name, words, templates in classes if name not in set(unnamed)]
    count, most = max(len(t) for _, t in named), max(len(words) for words, _ in named)
    captions = [[[t[i % len(t)].format(words[n % len(words)]) for words, t in named]
                 for n in range(most)]
                for i in range(count)]
    tokens = torch.stack([torch.stack([tokenizer(row) for row in per_name])
                          for per_name in captions])
    column = iter(range(len(named)))
    caption_of = [-1 if name in set(unnamed) else next(column) for name, _, _ in classes]
    return tokens, torch.tensor([len(words) for words, _ in named]), torch.tensor(caption_of)


def split_accuracy(clip: Clip, data) -> float:
    """Zero-shot accuracy in percent on a dataset config's test split, with its own template
    ensemble."""
    images, labels = materialize(data.load(split=data.split, transform=clip.preprocess)).tensors
    # (d, C)
    classifier = class_embeddings(clip.model, clip.tokenizer, data.classnames, data.templates)
    return zero_shot_accuracy(clip.model, images, labels, classifier)


def main(argv: list[str] | None = None) -> None:
    from hydra.utils import instantiate

    from ccup.configs import compose

    parser = argparse.ArgumentParser(prog="python -m ccup.tiny", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="the embedded model's option of "
                                                        "conf/model/ (tiny, tiny_rn)")
    parser.add_argument("--ship", action="store_true", help="write the retrained weights into "
                                                            "ccup/weights")
    args = parser.parse_args(argv)
    quiet_lightning()
    cfg = compose(f"model={args.model}")
    with tempfile.TemporaryDirectory() as tmp:
        retrained = instantiate(cfg.model, cache_dir=tmp, shipped=False)
        (trained,) = (Path(tmp) / "models").glob("*.pt")
        # read before any cache
        shipped = instantiate(cfg.model) if (SHIPPED / trained.name).exists() else None
        for data in cfg.model.train_data.values():
            data = instantiate(data)
            ours = split_accuracy(retrained, data)
            theirs = split_accuracy(shipped, data) if shipped is not None else float("nan")
            print(f"{data.name}: retrained {ours:.2f} %, shipped {theirs:.2f} %")
            if shipped is not None and abs(ours - theirs) > TOLERANCE and not args.ship:
                sys.exit(f"error: the shipped weights score {theirs:.2f} %, the recipe retrained "
                         f"{ours:.2f} % on {data.name}: more than {TOLERANCE} points apart")
        if args.ship:
            for old in SHIPPED.glob(f"{cfg.model.arch}-*"):
                old.unlink()
            for part in (trained, trained.with_suffix(".json")):
                storage.write_bytes(part.read_bytes(), SHIPPED / part.name)
            print(f"shipped {SHIPPED / trained.name}")
        elif shipped is None:
            sys.exit(f"error: no shipped weights for the current recipe ({trained.name}): run "
                     f"`make tiny MODEL={args.model} SHIP=1`")


if __name__ == "__main__":
    main()
