"""Text-space adaptation as a method: Kravets & Namboodiri, "Zero-shot CLIP forgetting via
text-image space adaptation" (TMLR 2025), read from the authors' code
(github.com/akres001/Zero-shot-CLIP-Forgetting-via-Text-image-Space-Adaptation at 0699eef: main.py,
utils.py, utils_lora.py; conf/method/text_space.yaml names the line of each setting).

No images: like CCUP it needs only class names, but it edits the text tower where CCUP edits the
image tower. The text projection P (width x d; `TextProjection` finds it in open_clip's and
transformers' CLIP) gets a rank-r update, P' = P + (BA)^T / r (LoRA, with their lora_alpha 1),
trained so that the forget class's name lands on the empty prompt's embedding and the other names
stay where they were:

    lamb_forget ||E - H_f P'|| + lamb_preserve ||H_p P - H_p P'|| + lamb_weight ||BA||
                                                                      (Frobenius norms)

H_f holds the pooled text features (before P) of each forget class name, E as many copies of the
empty prompt's normalised embedding, H_p the features of the names to keep. The authors have a
language model write class names similar to the forget class for H_p; here they are the dataset's
other class names and their synonyms (where the dataset config lists them), with the authors'
prompt, the name alone ("{}").

Each trial trains A and B (A Kaiming-uniform, B zero, as LoRA starts) with Adam at lr 0.01 for 2,000
steps and keeps the weights of the lowest loss (the authors' loop means to: its best loss is never
updated, so it keeps the last). A trial that cut the forget distance ||E - H_f P'|| by less than 70
% is run again with lamb_forget raised by 0.05, up to 100 trials. alpha interpolates the projection,
P_alpha = P + alpha (P' - P).
"""
import copy

import torch
from open_clip.transformer import text_global_pool

from ccup.errors import UserError
from ccup.projection import check_alpha
from ccup.task import UnlearnTask
from ccup.zeroshot import class_embeddings

# The noise on the empty prompt's embedding while its nearest class is a forget class, in units of
# the embedding's root-mean-square coordinate: the authors add noise of standard deviation 0.5 to
# CLIP's embedding, whose coordinates are of that order; a model whose embeddings are scaled
# otherwise (the embedded model's) gets as much noise relatively. It doubles every NOISE_DOUBLES
# draws: on the embedded model the empty prompt lies at cosine 0.99 from "dress", and noise of the
# authors' size never moves it away.
EMPTY_NOISE = 1.0
NOISE_DOUBLES = 10


class TextSpace:
    """Text-space adaptation of the text projection (see the module's docstring), `steps` Adam steps
    per trial."""

    def __init__(self, alpha: float, rank: int, lamb_forget: float, lamb_preserve: float,
                 lamb_weight: float, lr: float, steps: int, reduction: float, trials: int,
                 raise_forget: float, templates: list[str], seed: int,
                 synonyms: dict | None = None):
        check_alpha(alpha)
        if not (isinstance(rank, int) and rank >= 1 and steps >= 1 and trials >= 1):
            raise UserError("method.rank, method.steps and method.trials must be at least 1, got "
                            f"{rank}, {steps} and {trials}")
        if not all(isinstance(w, int | float) and 0 <= w < float("inf")
                   for w in (lamb_forget, lamb_preserve, lamb_weight, raise_forget)):
            raise UserError("method.lamb_forget, lamb_preserve, lamb_weight and raise_forget must "
                            f"be finite numbers >= 0, got {lamb_forget}, {lamb_preserve}, "
                            f"{lamb_weight} and {raise_forget}")
        if not 0 <= reduction < 1:
            raise UserError("method.reduction (the forget distance's least relative cut) lies in "
                            f"[0, 1), got {reduction}")
        self.alpha = alpha
        self.rank = rank
        self.lamb_forget = lamb_forget
        self.lamb_preserve = lamb_preserve
        self.lamb_weight = lamb_weight
        self.lr = lr
        self.steps = steps
        self.reduction = reduction
        self.trials = trials
        self.raise_forget = raise_forget
        self.templates = list(templates)
        self.seed = seed
        self.synonyms = dict(synonyms or {})
        self.stats = {}

    def edits(self, model: torch.nn.Module) -> list[str]:
        """The text projection."""
        return [TextProjection(model).name]

    def __call__(self, model: torch.nn.Module, task: UnlearnTask) -> torch.nn.Module:
        projection = TextProjection(model)
        generator = torch.Generator().manual_seed(self.seed)
        retain = [task.classnames[i] for i in task.retain_idx]
        preserve = [*retain, *(word for name in retain for word in self.synonyms.get(name, ()))]
        with torch.no_grad():
            forget_features = pooled(model, task.tokenizer,
                                     [t.format(n) for n in task.forget for t in self.templates])
            preserve_features = pooled(model, task.tokenizer,
                                       [t.format(n) for n in preserve for t in self.templates])
            names = class_embeddings(model, task.tokenizer, task.classnames, self.templates).T
            target = empty_target(model, task.tokenizer, names, task.forget_idx, generator)
        target = target.expand(len(forget_features), -1)
        P = projection.matrix(model)
        lamb_forget = self.lamb_forget
        for trial in range(1, self.trials + 1):
            adapted, cut = self.fit(P, forget_features, preserve_features, target, lamb_forget,
                                    generator)
            if cut >= self.reduction or trial == self.trials:
                break
            lamb_forget += self.raise_forget
        self.stats = {"unlearn/trials": trial, "unlearn/lamb_forget": lamb_forget,
                      "unlearn/forget_cut": cut}
        unlearned = copy.deepcopy(model)
        with torch.no_grad():
            projection.write(unlearned, torch.lerp(P, adapted, self.alpha))
        return unlearned

    def fit(self, P: torch.Tensor, H_f: torch.Tensor, H_p: torch.Tensor, E: torch.Tensor,
            lamb_forget: float, generator: torch.Generator) -> tuple[torch.Tensor, float]:
        """One trial: the adapted projection of the lowest loss, and the relative cut of the forget
        distance."""
        A = torch.empty(self.rank, P.shape[0])
        torch.nn.init.kaiming_uniform_(A, a=5 ** 0.5, generator=generator)
        A = A.to(P).requires_grad_()
        B = torch.zeros(P.shape[1], self.rank, dtype=P.dtype, device=P.device, requires_grad=True)
        optimizer = torch.optim.Adam([A, B], lr=self.lr)
        kept = H_p @ P  # where the names to keep land now
        best, best_loss = P, float("inf")
        for _ in range(self.steps):
            adapted = P + (B @ A).T / self.rank
            loss = (lamb_forget * torch.linalg.norm(E - H_f @ adapted) + self.lamb_preserve *
                    torch.linalg.norm(kept - H_p @ adapted)
                    + self.lamb_weight * torch.linalg.norm(B @ A))
            if loss.item() < best_loss:
                best, best_loss = adapted.detach(), loss.item()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        start = torch.linalg.norm(E - H_f @ P)
        return best, ((start - torch.linalg.norm(E - H_f @ best)).abs() / start).item()


class TextProjection:
    """A model's text projection as the (width, d) matrix P of z = h @ P: open_clip's
    `text_projection` parameter, or the weight W (d, width) of a linear layer, z = W h
    (transformers' CLIP; a bias, where there is one, stays)."""

    def __init__(self, model: torch.nn.Module):
        projection = getattr(model, "text_projection", None)
        if not isinstance(projection, torch.nn.Parameter | torch.nn.Linear):
            raise UserError(f"text_space edits the text projection of a CLIP text tower "
                            f"(`text_projection`, a matrix or a linear layer); "
                            f"{type(model).__name__} has none")
        self.linear = isinstance(projection, torch.nn.Linear)
        self.name = "text_projection.weight" if self.linear else "text_projection"

    def matrix(self, model: torch.nn.Module) -> torch.Tensor:
        """P, (width, d)."""
        weight = model.get_parameter(self.name).detach()
        return weight.T if self.linear else weight

    def write(self, model: torch.nn.Module, P: torch.Tensor) -> None:
        model.get_parameter(self.name).copy_(P.T if self.linear else P)


def pooled(model: torch.nn.Module, tokenizer, texts: list[str]) -> torch.Tensor:
    """(N, width) text features of `texts` before the text projection, pooled as `encode_text` pools
    them."""
    tokens = tokenizer(texts).to(next(model.parameters()).device)
    captured = {}
    if TextProjection(model).linear:  # what the layer is given
        hook = model.text_projection.register_forward_pre_hook(
            lambda module, inputs: captured.update(x=inputs[0]))
        try:
            model.encode_text(tokens)
        finally:
            hook.remove()
        return captured["x"]
    hook = model.ln_final.register_forward_hook(
        lambda module, inputs, output: captured.update(x=output))
    try:
        model.encode_text(tokens)
    finally:
        hook.remove()
    return text_global_pool(captured["x"], tokens, model.text_pool_type,
                            eos_token_id=getattr(model, "text_eos_id", None))


def empty_target(model: torch.nn.Module, tokenizer, names: torch.Tensor, forget_idx: list[int],
                 generator: torch.Generator, draws: int = 100) -> torch.Tensor:
    """(1, d) the empty prompt's normalised embedding, where the forget names are sent; while its
    nearest of the (C, d) class embeddings `names` is a forget class, it is drawn again with noise,
    as the authors do (main.py, compute_proj_into), the noise growing (EMPTY_NOISE, NOISE_DOUBLES),
    at most `draws` times."""
    empty = model.encode_text(tokenizer([""]))
    target = torch.nn.functional.normalize(empty, dim=-1)
    for draw in range(draws):
        if int((names @ target.T).argmax()) not in forget_idx:
            return target
        scale = EMPTY_NOISE * 2 ** (draw // NOISE_DOUBLES) * empty.square().mean().sqrt()
        target = torch.nn.functional.normalize(
            empty + scale * torch.randn(empty.shape, generator=generator).to(empty), dim=-1)
    raise UserError(f"the empty prompt's embedding stays nearest to a forget class after {draws} "
                    "noisy draws: text_space has no place to send the forget names on this model; "
                    "use another method")
