"""The image tower's final projection head, what its embedding comes out of: found once per kind
of tower (`projection_head`), a linear map of the embedding space folded into it (so the unlearned
model is an ordinary open_clip model, same architecture, same state-dict keys), taken out for
features, and applied to them.

Everything else asks the head: a new kind of tower is one more head."""
import copy
from contextlib import contextmanager

import torch
from open_clip.modified_resnet import ModifiedResNet
from open_clip.timm_model import TimmModel
from open_clip.transformer import VisionTransformer

from ccup.errors import UserError
from ccup.projection import LowRank


class MatrixHead:
    """A ViT's `visual.proj`, a (D, d) matrix in the row-vector convention: z = h @ proj."""

    def __init__(self, visual: VisionTransformer):
        self.visual = visual

    def names(self) -> list[str]:
        return ["proj"]

    def fold(self, W: torch.Tensor | LowRank) -> None:
        if self.visual.proj is None:
            raise UserError("this ViT has no final projection (proj_type='none'); CCUP needs "
                            "one to edit")
        self.visual.proj.copy_(apply_map(W, self.visual.proj.T).T)  # (W z)^T = h @ proj @ W^T

    @contextmanager
    def removed(self):
        proj, self.visual.proj = self.visual.proj, None  # VisionTransformer skips a None projection
        try:
            yield
        finally:
            self.visual.proj = proj

    def project(self, features: torch.Tensor) -> torch.Tensor:
        return features @ self.visual.proj


class LinearHead:
    """The tower's last `nn.Linear`, named `name` within it: z = weight @ h + bias, weight (d,
    D)."""

    def __init__(self, visual: torch.nn.Module, name: str):
        self.name, self.linear = name, visual.get_submodule(name)

    def names(self) -> list[str]:
        return [f"{self.name}.{param}" for param, _ in self.linear.named_parameters()]

    def fold(self, W: torch.Tensor | LowRank) -> None:
        self.linear.weight.copy_(apply_map(W, self.linear.weight))
        if self.linear.bias is not None:
            self.linear.bias.copy_(apply_map(W, self.linear.bias[:, None])[:, 0])

    @contextmanager
    def removed(self):
        weight, bias = self.linear.weight, self.linear.bias
        identity = torch.eye(self.linear.in_features, dtype=weight.dtype, device=weight.device)
        # An identity of the input width in place of the weights: ModifiedResNet's attention pool
        # reads c_proj's weight and bias directly, so the layer stays and only its parameters
        # change.
        self.linear.weight = torch.nn.Parameter(identity)
        self.linear.bias = torch.nn.Parameter(torch.zeros_like(identity[0]))
        try:
            yield
        finally:
            self.linear.weight, self.linear.bias = weight, bias

    def project(self, features: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(features, self.linear.weight, self.linear.bias)


def projection_head(model: torch.nn.Module) -> MatrixHead | LinearHead:
    """The final projection of `model`'s image tower: what its embedding comes out of."""
    visual = model.visual
    if isinstance(visual, VisionTransformer):
        return MatrixHead(visual)
    if isinstance(visual, ModifiedResNet):
        return LinearHead(visual, "attnpool.c_proj")
    if isinstance(visual, TimmModel) and isinstance(getattr(visual.head, "proj", None),
                                                    torch.nn.Linear):
        return LinearHead(visual, "head.proj")
    if isinstance(getattr(visual, "visual_projection", None), torch.nn.Linear):  # ccup.hf's
        return LinearHead(visual, "visual_projection")
    raise UserError(f"no final linear projection found in image tower {type(visual).__name__}; "
                    "CCUP edits ViT (visual.proj), ModifiedResNet (attnpool.c_proj), timm towers "
                    "with head.proj and transformers' CLIP (visual_projection)")


def apply_map(W: torch.Tensor | LowRank, X: torch.Tensor) -> torch.Tensor:
    """W X for a map of the embedding space, a (d, d) matrix or CCUP's low-rank I - U V^T, and (d,
    n) X."""
    return W.apply(X) if isinstance(W, LowRank) else W.to(X) @ X


def fold_projection(model: torch.nn.Module, W: torch.Tensor | LowRank) -> torch.nn.Module:
    """A copy of `model` whose image embeddings are W z for the original's z; W is a (d, d) matrix
    or a LowRank map. `model` is untouched; the copy shares every tensor but the final projection
    with it (no second copy of the weights), so treat both as read-only."""
    edited = copy.deepcopy(model, memo=shared_except(model, projection_names(model)))
    with torch.no_grad():
        projection_head(edited).fold(W)
    return edited


def shared_except(model: torch.nn.Module, names: list[str]) -> dict:
    """A deepcopy memo under which a copy of `model` shares its parameters and buffers but those in
    `names`."""
    tensors = [*model.named_parameters(), *model.named_buffers()]
    return {id(tensor): tensor for name, tensor in tensors if name not in names}


def projection_names(model: torch.nn.Module) -> list[str]:
    """Names of the parameters `fold_projection` rewrites: all that CCUP changes."""
    return [f"visual.{name}" for name in projection_head(model).names()]


def projection_removed(model: torch.nn.Module):
    """Within the block, `model.visual` returns its features before the final projection: (B, D)
    instead of (B, d)."""
    return projection_head(model).removed()


def project(model: torch.nn.Module, features: torch.Tensor) -> torch.Tensor:
    """(N, d) image embeddings of `model` from its (N, D) features before the final projection."""
    return projection_head(model).project(features)
