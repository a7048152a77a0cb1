"""Writes a linear map of the image embedding space into the image tower's final projection layer, so the
unlearned model is an ordinary open_clip model (same architecture, same state-dict keys)."""
import copy
import json
from contextlib import contextmanager
from pathlib import Path

import open_clip
import torch
from open_clip.modified_resnet import ModifiedResNet
from open_clip.timm_model import TimmModel
from open_clip.transformer import VisionTransformer

from ccup import storage
from ccup.errors import UserError


def fold_projection(model: torch.nn.Module, W: torch.Tensor) -> torch.nn.Module:
    """A copy of `model` whose image embeddings are W z for the original's z; W is (d, d). `model` is untouched; the
    copy shares every tensor but the final projection with it (no second copy of the weights), so treat both as
    read-only."""
    edited = copy.deepcopy(model, memo=shared_except(model, projection_names(model)))
    visual = edited.visual
    with torch.no_grad():
        if isinstance(visual, VisionTransformer):
            if visual.proj is None:
                raise UserError("this ViT has no final projection (proj_type='none'); CCUP needs one to edit")
            # Row-vector convention z = h @ proj, proj: (D, d), so (W z)^T = h @ proj @ W^T.
            visual.proj.copy_(visual.proj @ W.T.to(visual.proj))
        else:
            linear = final_linear(visual)  # z = weight @ h + bias, weight: (d, D)
            linear.weight.copy_(W.to(linear.weight) @ linear.weight)
            if linear.bias is not None:
                linear.bias.copy_(W.to(linear.bias) @ linear.bias)
    return edited


def shared_except(model: torch.nn.Module, names: list[str]) -> dict:
    """A deepcopy memo under which a copy of `model` shares its parameters and buffers but those in `names`."""
    tensors = [*model.named_parameters(), *model.named_buffers()]
    return {id(tensor): tensor for name, tensor in tensors if name not in names}


def final_linear(visual: torch.nn.Module) -> torch.nn.Linear:
    """The last linear layer of a non-ViT image tower: what its embedding comes out of."""
    if isinstance(visual, ModifiedResNet):
        return visual.attnpool.c_proj
    if isinstance(visual, TimmModel) and isinstance(getattr(visual.head, "proj", None), torch.nn.Linear):
        return visual.head.proj
    raise UserError(f"no final linear projection found in image tower {type(visual).__name__}; "
                    "CCUP edits ViT (visual.proj), ModifiedResNet (attnpool.c_proj) and timm towers with head.proj")


def projection_names(model: torch.nn.Module) -> list[str]:
    """Names of the parameters `fold_projection` rewrites: all that CCUP changes."""
    if isinstance(model.visual, VisionTransformer):
        return ["visual.proj"]
    linear = final_linear(model.visual)
    prefix = next(name for name, module in model.named_modules() if module is linear)
    return [f"{prefix}.{name}" for name, _ in linear.named_parameters()]


@contextmanager
def projection_removed(model: torch.nn.Module):
    """Within the block, `model.visual` returns its features before the final projection: (B, D) instead of (B, d)."""
    visual = model.visual
    if isinstance(visual, VisionTransformer):
        proj, visual.proj = visual.proj, None  # VisionTransformer skips a None projection
        try:
            yield
        finally:
            visual.proj = proj
        return
    linear = final_linear(visual)
    weight, bias = linear.weight, linear.bias
    identity = torch.eye(linear.in_features, dtype=weight.dtype, device=weight.device)
    # An identity of the input width in place of the weights: ModifiedResNet's attention pool reads c_proj's
    # weight and bias directly, so the layer stays and only its parameters change.
    linear.weight, linear.bias = torch.nn.Parameter(identity), torch.nn.Parameter(torch.zeros_like(identity[0]))
    try:
        yield
    finally:
        linear.weight, linear.bias = weight, bias


def project(model: torch.nn.Module, features: torch.Tensor) -> torch.Tensor:
    """(N, d) image embeddings of `model` from its (N, D) features before the final projection."""
    visual = model.visual
    if isinstance(visual, VisionTransformer):
        return features @ visual.proj
    linear = final_linear(visual)
    return torch.nn.functional.linear(features, linear.weight, linear.bias)


def export_checkpoint(model: torch.nn.Module, model_name: str, path: str | Path) -> Path:
    """Save `model` so that plain open_clip loads it: `<path>` holds the state dict, and `<name>.json` beside it
    the architecture (needed for names open_clip does not ship: `open_clip.add_model_config(<dir>)` first)."""
    path = Path(path)
    config = json.dumps(open_clip.get_model_config(model_name), indent=2).encode()
    storage.write_bytes(config, path.parent / f"{model_name}.json")
    return storage.save(model.state_dict(), path)
