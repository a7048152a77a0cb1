import logging
import warnings

# registers the config resolvers before any config is resolved
from ccup import resolvers  # noqa: F401

# Warnings of the libraries that say nothing about the suite's work, printed once per job or
# training otherwise: Lightning 2.6 checks a pytree spec with a form torch deprecated;
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
# Lightning sees `srun` on a machine with SLURM and suggests it, but each job of the suite is one
# process (inside a SLURM job too, where the suite's launcher started it with srun);
warnings.filterwarnings("ignore", message=r"The `srun` command is available on your system but is "
                                          r"not used")
# the fine-tuning loop puts the model in eval mode on purpose: BatchNorm statistics frozen, no
# dropout (docs/method.md#baselines).
warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode at the start of "
                                          r"training")
# the fine-tuning loop's epochs are short, but its curves are logged every log_every_n_steps steps
# across epochs.
warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller than")


def quiet_lightning() -> None:
    """Lightning's banners for every Trainer (GPU/TPU available, an advertisement) at WARNING, for
    commands run outside Hydra (make tiny, make bench); conf/config.yaml sets the same for jobs."""
    for name in ("pytorch_lightning", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
