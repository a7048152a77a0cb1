"""Unlearned models saved so that plain open_clip loads them, with a manifest of what they are."""
import json
from pathlib import Path

import open_clip
import torch

from ccup import storage


def export_checkpoint(model: torch.nn.Module, model_name: str, folder: str | Path,
                      manifest: dict) -> Path:
    """Save `model` so that plain open_clip loads it: `<folder>/unlearned.pt` holds the state dict,
    `<name>.json` beside it the architecture (needed for names open_clip does not ship:
    `open_clip.add_model_config(<folder>)` first), and `manifest.json` what the model is
    (`write_manifest`). Returns the state dict's path."""
    folder = Path(folder)
    config = json.dumps(open_clip.get_model_config(model_name), indent=2).encode()
    storage.write_bytes(config, folder / f"{model_name}.json")
    write_manifest(folder, model_name, manifest)
    return storage.save(model.state_dict(), folder / "unlearned.pt")


def export_config_folder(model: torch.nn.Module, model_name: str, folder: str | Path,
                         manifest: dict, config: Path) -> Path:
    """Save a model loaded by a name with open_clip's schema (`hf-hub:`, `local-dir:`) as open_clip
    reads a `local-dir:<folder>`: its `config` file as `open_clip_config.json`, the state dict as
    `open_clip_pytorch_model.bin`, and `manifest.json` (`write_manifest`). Returns the state dict's
    path."""
    folder = Path(folder)
    storage.write_bytes(Path(config).read_bytes(), folder / "open_clip_config.json")
    write_manifest(folder, model_name, manifest)
    return storage.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")


def write_manifest(folder: str | Path, model_name: str, manifest: dict) -> Path:
    """`<folder>/manifest.json`: the model's name and `manifest` (its classes, templates, forget
    set, method and settings), what an exported model is read with."""
    return storage.write_bytes(json.dumps({"model": model_name, **manifest}, indent=2).encode(),
                               Path(folder) / "manifest.json")
