"""CLIP models by open_clip name and pretrained tag or checkpoint path, bundled with their
preprocess and tokenizer."""
import difflib
import functools
import hashlib
import os
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import urlparse

import open_clip
import torch
from huggingface_hub import constants, try_to_load_from_cache
from open_clip.factory import parse_model_name

from ccup.errors import MissingFiles, UserError
from ccup.export import export_checkpoint, export_config_folder

# Our own architectures (the embedded tiny model) join open_clip's registry; a config is named after
# its file stem.
MODEL_CONFIGS = Path(__file__).parent / "model_configs"
open_clip.add_model_config(MODEL_CONFIGS)


@dataclass
class Clip:
    """A CLIP model with what it needs to see images and read class names."""

    model: torch.nn.Module
    preprocess: Callable
    tokenizer: Callable
    name: str
    # where the weights came from: a recipe the suite trained, its cost
    info: dict = field(default_factory=dict)
    # export(model, name, folder, manifest): writes `model` (this one unlearned) into `folder` as
    # its library reads it, manifest.json beside it; open_clip's checkpoint unless the loader says.
    export: Callable[[torch.nn.Module, str, Path, dict], Path] = export_checkpoint


def load_clip(name: str, pretrained: str | None = None) -> Clip:
    """An open_clip model, in eval mode.

    Args:
        name: an open_clip architecture (`open_clip.list_models()`), `ccup-tiny-p7` (the embedded
            model), or a name with open_clip's schema, `hf-hub:<org>/<repo>` or
            `local-dir:<folder>`, which brings its own weights.
        pretrained: a tag (e.g. 'openai', downloaded by open_clip), a checkpoint file, or None for
            random weights; ignored for a name with a schema, as open_clip ignores it.

    Returns:
        `Clip`: the model, its image preprocessing, its tokenizer and its name.

    Raises:
        UserError: an unknown architecture or tag, or a tag or hub name whose weights are neither
            cached nor downloadable.
    """
    schema, identifier = parse_model_name(name)
    if schema == "hf-hub" and not hub_at_hand(identifier, "open_clip_config.json"):
        raise MissingFiles(f"the weights of {name} are not on this machine and the hub does not "
                           "answer (offline, or HF_HUB_OFFLINE set): fetch them where there is "
                           "internet and pass model.name=local-dir:/path/to/folder")
    if schema == "local-dir" and not Path(identifier, "open_clip_config.json").is_file():
        raise UserError(f"{name}: no open_clip_config.json in {identifier}; a local-dir: folder "
                        "holds open_clip's config and checkpoint, as an hf-hub: repository does")
    if schema is not None:
        pretrained = None  # the schema's folder or repository holds the weights
    elif name not in open_clip.list_models():
        close = difflib.get_close_matches(name, open_clip.list_models(), n=3)
        raise UserError(f"unknown open_clip model {name!r}; closest: {close} (see "
                        "open_clip.list_models())")
    if pretrained is not None and not Path(pretrained).is_file():
        tags = open_clip.list_pretrained_tags_by_model(name)
        if pretrained not in tags:
            raise UserError(f"pretrained={pretrained!r} is neither a file nor a tag of {name}; "
                            f"tags: {tags}")
    if (pretrained is not None and not Path(pretrained).is_file()
            and not weights_at_hand(name, pretrained)):
        raise MissingFiles(f"the {pretrained!r} weights of {name} are not on this machine and "
                           "their host does not answer (offline?): fetch them where there is "
                           "internet and pass model.pretrained=/path/to/checkpoint")
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained)
    except Exception as exc:
        # a file that is not this model's checkpoint
        if pretrained is not None and Path(pretrained).is_file():
            raise UserError(f"{pretrained} is not a checkpoint of {name} (loading it raised "
                            f"{type(exc).__name__}): pass an open_clip checkpoint or state dict "
                            f"of {name}") from exc
        if "Failed to download" not in str(exc):
            raise
        raise MissingFiles(f"could not download the {pretrained!r} weights of {name} (offline?): "
                           "fetch them where there is internet and pass "
                           "model.pretrained=/path/to/checkpoint") from exc
    clip = Clip(model.eval(), preprocess, tokenizer(name), name)
    if schema is not None:  # exported as its folder is laid out: model.name=local-dir:<export>
        clip.export = partial(export_config_folder, config=schema_config(schema, identifier))
    return clip


@functools.cache
def tokenizer(name: str) -> Callable:
    """open_clip's tokenizer for a model, built once per process: reading CLIP's BPE vocabulary
    takes some 0.15 s of CPU, which each job a sweep's worker runs would pay again."""
    return open_clip.get_tokenizer(name)


def schema_config(schema: str, identifier: str) -> Path:
    """The open_clip_config.json of a `local-dir:` folder or of an `hf-hub:` repository (cached once
    the model is loaded)."""
    if schema == "local-dir":
        return Path(identifier) / "open_clip_config.json"
    return Path(try_to_load_from_cache(identifier, "open_clip_config.json"))


def weights_at_hand(name: str, tag: str, timeout: float = 3.0) -> bool:
    """Whether open_clip can get a pretrained tag's weights: in the Hugging Face cache already, or
    from a host that answers within `timeout` seconds. Offline, open_clip would spend a minute
    retrying before it gives up."""
    source = open_clip.get_pretrained_cfg(name, tag)
    repo, filename = os.path.split(source.get("hf_hub", ""))
    if repo:
        names = [filename or open_clip.pretrained.HF_WEIGHTS_NAME,
                 open_clip.pretrained.HF_SAFE_WEIGHTS_NAME]
        cached = any(isinstance(try_to_load_from_cache(repo, file), str) for file in names)
        return cached or hub_answers(timeout)
    url = source.get("url", "")  # open_clip's own download cache for weights it fetches by URL
    cached = (Path.home() / ".cache" / "clip" / os.path.basename(urlparse(url).path)).is_file()
    return cached or answers(url, timeout)


def hub_at_hand(repo: str, filename: str, revision: str | None = None,
                timeout: float = 3.0) -> bool:
    """Whether a file of a Hugging Face hub repository can be had: in the local cache already, or
    from the hub if it answers within `timeout` seconds (never where HF_HUB_OFFLINE is set)."""
    cached = try_to_load_from_cache(repo, filename, revision=revision)
    return isinstance(cached, str) or hub_answers(timeout)


def hub_answers(timeout: float) -> bool:
    """Whether the Hugging Face hub may be asked (HF_HUB_OFFLINE is not set) and answers within
    `timeout` seconds."""
    return not constants.HF_HUB_OFFLINE and answers(constants.ENDPOINT, timeout)


def answers(url: str, timeout: float) -> bool:
    """Whether the host of `url` accepts a connection within `timeout` seconds."""
    try:
        socket.create_connection((urlparse(url).hostname, 443), timeout=timeout).close()
        return True
    except (OSError, TypeError):
        return False


def same_weights(a: torch.nn.Module, b: torch.nn.Module, names: Iterable[str]) -> bool:
    """Whether two models hold the same values under `names`: shared tensors (checked first, for
    free) or equal."""
    ours, theirs = a.state_dict(), b.state_dict()
    return all(ours[name].data_ptr() == theirs[name].data_ptr()
               # one may be on the GPU, mid-training
               or torch.equal(ours[name], theirs[name].to(ours[name].device))
               for name in names)


def same_text_tower(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Whether two models embed text alike: then class embeddings of one serve the other."""
    return same_weights(a, b, text_tower(a))


def text_tower(model: torch.nn.Module) -> list[str]:
    """Names of the weights behind text embeddings: all but the image tower's."""
    return [name for name in model.state_dict() if not name.startswith("visual.")]


def weights_digest(model: torch.nn.Module, skip: Sequence[str] = ()) -> str:
    """SHA-256 of a model's parameter names and bytes, but those named in `skip`: caches of what a
    model computes are keyed by it."""
    digest = hashlib.sha256()
    for name, value in model.state_dict().items():
        if name in skip:
            continue
        digest.update(name.encode())
        digest.update(
            value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
