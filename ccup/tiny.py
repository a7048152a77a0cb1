"""The embedded default: a tiny open_clip ViT trained here on Fashion-MNIST, cached after the first run."""
import hashlib
import json
import logging
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

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


def load_tiny(train_data, epochs: int, batch_size: int, lr: float, seed: int, cache_dir: str) -> Clip:
    """The tiny CLIP trained on the train split of `train_data` (a dataset config: name, classnames, templates, load)
    with the given recipe; trained once, then read from `cache_dir`."""
    classnames, templates = list(train_data.classnames), list(train_data.templates)
    recipe = dict(arch=json.loads((MODEL_CONFIGS / f"{ARCH}.json").read_text()), data=train_data.name,
                  classnames=classnames, templates=templates, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(cache_dir) / "models" / f"{ARCH}-{key}.pt"
    # Its own random stream, from weight init to the last batch: the job's seeded stream is left untouched.
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        clip = load_clip(ARCH)
        if not path.exists():
            log.info("training the embedded tiny CLIP once (cached at %s)", path)
            data = materialize(train_data.load(split="train", transform=clip.preprocess))
            loader = DataLoader(data, batch_size=batch_size, shuffle=True, drop_last=True)
            tokens = torch.stack([clip.tokenizer([t.format(c) for c in classnames]) for t in templates])  # (T, C, L)
            module = CaptionContrast(clip.model.train(), tokens, lr, total_steps=epochs * len(loader))
            # CPU on every machine: the cached weights must not depend on which device trained them.
            trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", deterministic=True, logger=False,
                                 enable_checkpointing=False, enable_model_summary=False)
            trainer.fit(module, loader)
            storage.save(clip.model.state_dict(), path)
    clip.model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    clip.model.eval()
    return clip
