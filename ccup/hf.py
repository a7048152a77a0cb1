"""Hugging Face transformers CLIP models (`CLIPModel`, by hub id or local folder) in the shape the
suite uses: open_clip's (`visual`, `encode_image`, `encode_text`, `logit_scale`), the image tower's
weights under `visual.*`."""
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

from ccup.errors import MissingFiles, UserError
from ccup.export import write_manifest
from ccup.models import Clip, hub_at_hand


class VisionTower(torch.nn.Module):
    """The image tower, `model.visual`: the vision transformer and the final projection, a linear
    layer that `ccup.heads.projection_head` finds as `visual_projection`. `preprocess_cfg` holds
    open_clip's keys (size, mean, std): what the images fed to it look like."""

    def __init__(self, vision_model: torch.nn.Module, visual_projection: torch.nn.Linear,
                 preprocess_cfg: dict):
        super().__init__()
        self.vision_model = vision_model
        self.visual_projection = visual_projection
        self.preprocess_cfg = preprocess_cfg

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, d), as `CLIPModel.get_image_features`."""
        return self.visual_projection(self.vision_model(pixel_values=images).pooler_output)


class HFClip(torch.nn.Module):
    """A transformers `CLIPModel` with open_clip's interface. Its modules are the CLIPModel's own,
    registered as `visual` (the image tower), `text_model`, `text_projection` and `logit_scale` (a
    log scale in both libraries). The CLIPModel itself is kept unregistered, as `pretrained` (its
    state dict would name every weight twice): what edits these modules edits it, and a copy of this
    module copies it along with them."""

    def __init__(self, clip: torch.nn.Module, preprocess_cfg: dict):
        super().__init__()
        self.visual = VisionTower(clip.vision_model, clip.visual_projection, preprocess_cfg)
        self.text_model = clip.text_model
        self.text_projection = clip.text_projection
        self.logit_scale = clip.logit_scale
        object.__setattr__(self, "pretrained", clip)

    def encode_image(self, images: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """(B, d) embeddings of (B, 3, H, W) images, L2-normalised with `normalize`."""
        features = self.visual(images)
        return F.normalize(features, dim=-1) if normalize else features

    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """(N, d) embeddings of (N, L) token ids padded after the end-of-text token (`Tokenizer`).
        The causal mask keeps the padding from the end-of-text token the text model pools, so no
        attention mask is needed."""
        features = self.text_projection(self.text_model(input_ids=tokens).pooler_output)
        return F.normalize(features, dim=-1) if normalize else features


class Tokenizer:
    """texts -> (N, L) token ids, padded with the tokenizer's pad token (CLIP's: end-of-text) to the
    text model's context length L and truncated to it, as open_clip's tokenizers give them."""

    def __init__(self, tokenizer, context_length: int):
        self.tokenizer = tokenizer
        self.context_length = context_length

    def __call__(self, texts: str | list[str]) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else list(texts)
        return self.tokenizer(texts, padding="max_length", max_length=self.context_length,
                              truncation=True, return_tensors="pt").input_ids


class Preprocess:
    """PIL image -> (3, H, W) tensor by the model's own image processor. Its repr is the processor's
    settings: a dataset's key (`ccup.datasets.dataset_key`, which the feature cache reads) names the
    transform by it."""

    def __init__(self, processor):
        self.processor = processor

    def __call__(self, image) -> torch.Tensor:
        return self.processor(images=image, return_tensors="pt").pixel_values[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.processor.to_json_string()})"


def preprocess_cfg(processor) -> dict:
    """open_clip's description of the images a tower takes, from a CLIPImageProcessor: (H, W), mean
    and std."""
    crop = processor.crop_size if processor.do_center_crop else processor.size
    size = (crop["height"], crop["width"]) if "height" in crop else (crop["shortest_edge"],) * 2
    return {"size": size, "mean": tuple(processor.image_mean), "std": tuple(processor.image_std)}


def load_hf_clip(name: str, revision: str | None = None) -> Clip:
    """A transformers `CLIPModel` with its image processor and tokenizer, in eval mode, with
    open_clip's interface.

    Args:
        name: a Hugging Face hub id (`openai/clip-vit-base-patch32`, downloaded by transformers) or
            a local folder written by `save_pretrained` of `CLIPModel` and `CLIPProcessor`.
        revision: the hub's branch, tag or commit; None for the default branch.

    Returns:
        `Clip`: the model (`HFClip`), its image preprocessing, its tokenizer, its name, and an
        export that writes a folder `CLIPModel.from_pretrained` reads.

    Raises:
        UserError: transformers is not installed, or `name` holds no CLIP model and processor.
        MissingFiles: a hub id whose files are neither cached nor downloadable (offline).
    """
    try:
        from transformers import AutoProcessor, CLIPModel
        from transformers.utils.logging import disable_progress_bar
    except ImportError as exc:
        raise UserError("model=hf needs transformers: pip install -e '.[hf]' (make install "
                        "installs it)") from exc
    disable_progress_bar()  # a bar per load on a job's console, where libraries only warn
    if not Path(name).is_dir() and not hub_at_hand(name, "config.json", revision):
        raise MissingFiles(f"model.name={name} is no local folder, and the hub's model is not on "
                           "this machine and the hub does not answer (offline, or HF_HUB_OFFLINE "
                           "set): save it where there is internet (CLIPModel and CLIPProcessor's "
                           "save_pretrained) and pass model.name=/path/to/folder")
    try:
        clip = CLIPModel.from_pretrained(name, revision=revision)
        processor = AutoProcessor.from_pretrained(name, revision=revision)
    except (OSError, ValueError) as exc:  # no CLIP model, config or processor in the folder or repo
        raise UserError(f"model.name={name} holds no transformers CLIP model with its processor "
                        f"({exc}): pass a folder written by CLIPModel.save_pretrained and "
                        "CLIPProcessor.save_pretrained") from exc
    tokenizer = Tokenizer(processor.tokenizer, clip.config.text_config.max_position_embeddings)
    model = HFClip(clip.eval(), preprocess_cfg(processor.image_processor))
    return Clip(model, Preprocess(processor.image_processor), tokenizer, name,
                export=partial(export_pretrained, processor=processor))


def export_pretrained(model: HFClip, name: str, folder: Path, manifest: dict, processor) -> Path:
    """Save `model` and `processor` into `folder` as transformers does (`CLIPModel.from_pretrained`
    and `model=hf model.name=<folder>` read it), `manifest.json` beside them. Returns the folder."""
    folder = Path(folder)
    model.pretrained.save_pretrained(folder)
    processor.save_pretrained(folder)
    write_manifest(folder, name, manifest)
    return folder
