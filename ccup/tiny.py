"""The embedded default: a tiny open_clip ViT trained here on Fashion-MNIST and digits, cached after the first run."""
import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import ConcatDataset, DataLoader, TensorDataset

from ccup import storage
from ccup.data import materialize
from ccup.models import MODEL_CONFIGS, Clip, load_clip
from ccup.zeroshot import zero_shot_logits

log = logging.getLogger(__name__)
ARCH = "ccup-tiny-p7"


class CaptionContrast(pl.LightningModule):
    """Image-text contrast against templated captions: each step draws one template per class and classifies
    every image against the C captions (the CLIP loss with the batch's duplicate captions merged)."""

    def __init__(self, model, tokens: torch.Tensor, lr: float, total_steps: int):
        super().__init__()
        self.model, self.lr, self.total_steps = model, lr, total_steps
        self.register_buffer("tokens", tokens)  # (T templates, C classes, L)

    def training_step(self, batch, batch_idx):
        images, labels = batch
        num_templates, num_classes, _ = self.tokens.shape
        pick = torch.randint(num_templates, (num_classes,), device=self.device)
        captions = self.model.encode_text(self.tokens[pick, torch.arange(num_classes)], normalize=True)  # (C, d)
        loss = F.cross_entropy(zero_shot_logits(self.model, images, captions.T), labels)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.lr, weight_decay=0.1)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, self.lr, total_steps=self.total_steps)
        return [optimizer], [{"scheduler": schedule, "interval": "step"}]


def load_tiny(train_data: Mapping, repeats: Mapping[str, int], epochs: int, batch_size: int, lr: float, seed: int,
              cache_dir: str) -> Clip:
    """The tiny CLIP trained on the train splits of `train_data` (dataset configs by name: name, classnames, templates,
    load) side by side, one class name per class of each, with the given recipe; trained once, then read from
    `cache_dir`. A dataset's train split is repeated `repeats[name]` times (default once), to balance small ones."""
    datasets = list(train_data.values())
    repeats = {data.name: repeats.get(data.name, 1) for data in datasets}
    recipe = dict(arch=json.loads((MODEL_CONFIGS / f"{ARCH}.json").read_text()), epochs=epochs, batch_size=batch_size,
                  lr=lr, seed=seed, data=[dict(name=data.name, classnames=list(data.classnames),
                                               templates=list(data.templates), repeats=repeats[data.name])
                                          for data in datasets])
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(cache_dir) / "models" / f"{ARCH}-{key}.pt"
    # Its own random stream, from weight init to the last batch: the job's seeded stream is left untouched.
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        clip = load_clip(ARCH)
        if not path.exists():
            log.info("training the embedded tiny CLIP once (cached at %s)", path)
            loader = DataLoader(training_set(datasets, repeats, clip.preprocess), batch_size=batch_size, shuffle=True,
                                drop_last=True)
            module = CaptionContrast(clip.model.train(), caption_tokens(datasets, clip.tokenizer), lr,
                                     total_steps=epochs * len(loader))
            # CPU on every machine: the cached weights must not depend on which device trained them.
            trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", deterministic=True, logger=False,
                                 enable_checkpointing=False, enable_model_summary=False)
            trainer.fit(module, loader)
            storage.save(clip.model.state_dict(), path)
    clip.model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    clip.model.eval()
    return clip


def training_set(datasets: Sequence, repeats: Mapping[str, int], transform: Callable) -> ConcatDataset:
    """The train splits side by side: labels of each dataset shifted past the classes of the ones before it."""
    parts, offset = [], 0
    for data in datasets:
        images, labels = materialize(data.load(split="train", transform=transform)).tensors
        parts += [TensorDataset(images, labels + offset)] * repeats[data.name]
        offset += len(data.classnames)
    return ConcatDataset(parts)


def caption_tokens(datasets: Sequence, tokenizer: Callable) -> torch.Tensor:
    """(T, C, L) caption tokens: each class captioned with its own dataset's templates, cycled to the longest list."""
    count = max(len(data.templates) for data in datasets)
    captions = [[data.templates[t % len(data.templates)].format(name) for data in datasets for name in data.classnames]
                for t in range(count)]
    return torch.stack([tokenizer(row) for row in captions])
