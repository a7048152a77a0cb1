"""Fine-tuning unlearning objectives: a baseline is its loss on forget and/or retain batches,
trained by the shared loop (ccup.loop, which says what a loss takes). A loss's settings have no
defaults: conf/method/<name>.yaml passes them."""
import torch
import torch.nn.functional as F

from ccup.loop import classification_loss, uses, with_teacher
from ccup.zeroshot import zero_shot_logits


@uses("retain")
def finetune(model, classifier, batch):
    """FT: fine-tune on retain data only; the forget class fades because it is never a target."""
    return classification_loss(model, classifier, *batch["retain"])


@uses("forget")
def grad_ascent(model, classifier, batch):
    """GA / NegGrad: gradient ascent on the forget data."""
    return -classification_loss(model, classifier, *batch["forget"])


@uses("forget", "retain")
def neggrad_plus(model, classifier, batch, beta: float):
    """NegGrad+ (Kurmanji et al., "Towards Unbounded Machine Unlearning", NeurIPS 2023,
    arXiv:2302.09880): descent on retain data, ascent on forget data weighted by beta. Their b *
    retain - (1 - b) * forget is this loss up to scale, with beta = (1 - b) / b."""
    retain = classification_loss(model, classifier, *batch["retain"])
    return retain - beta * classification_loss(model, classifier, *batch["forget"])


@uses("forget", "retain")
def random_label(model, classifier, batch):
    """RL: forget samples relabelled to random other classes, trained together with retain data, as
    in SalUn (Fan et al., "SalUn: Empowering Machine Unlearning via Gradient-based Weight Saliency
    in Both Image Classification and Generation", ICLR 2024, arXiv:2310.12508)."""
    images, labels = batch["forget"]
    num_classes = classifier.shape[1]
    other = (labels + torch.randint(1, num_classes, labels.shape,
                                    device=labels.device)) % num_classes
    retain = classification_loss(model, classifier, *batch["retain"])
    return classification_loss(model, classifier, images, other) + retain


def distillation_kl(student: torch.Tensor, teacher: torch.Tensor,
                    temperature: float) -> torch.Tensor:
    """KL(teacher || student) between the (B, C) logits softened by `temperature`: summed over
    classes, averaged over the batch and scaled by temperature^2, as Hinton et al.'s distillation
    loss (SCRUB's DistillKL)."""
    log_student = F.log_softmax(student / temperature, dim=1)
    log_teacher = F.log_softmax(teacher / temperature, dim=1)
    kl = F.kl_div(log_student, log_teacher, reduction="batchmean", log_target=True)
    return kl * temperature ** 2


def teacher_kl(model, teacher, classifier, images,
               temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The student's zero-shot logits on `images` and their distillation_kl from the frozen
    teacher's."""
    student = zero_shot_logits(model, images, classifier)
    with torch.no_grad():
        target = zero_shot_logits(teacher, images, classifier)
    return student, distillation_kl(student, target, temperature)


@uses("forget", "retain")
@with_teacher
def scrub(model, classifier, batch, teacher, step: int, steps: int, gamma: float, kl_weight: float,
          temperature: float, max_fraction: float, max_every: int):
    """SCRUB (Kurmanji et al., "Towards Unbounded Machine Unlearning", NeurIPS 2023,
    arXiv:2302.09880): the student (the model) moves away from the frozen original, the teacher, on
    forget data and stays with it on retain data. A max-step raises KL(teacher || student) on the
    forget batch: its loss is -KL. A min-step lowers gamma * CE + kl_weight * KL(teacher || student)
    on the retain batch, CE being classification_loss's (of the same zero-shot logits). Within the
    first `max_fraction` of the `steps`, every `max_every`-th step (0, max_every, ...) is a
    max-step; all other steps are min-steps. kl_weight is their alpha, renamed: alpha is the suite's
    interpolation strength."""
    if step < max_fraction * steps and step % max_every == 0:
        images, _ = batch["forget"]
        return -teacher_kl(model, teacher, classifier, images, temperature)[1]
    images, labels = batch["retain"]
    student, kl = teacher_kl(model, teacher, classifier, images, temperature)
    return gamma * F.cross_entropy(student, labels) + kl_weight * kl
