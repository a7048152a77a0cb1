"""The suite's job config composed outside run.py (the tests, the benchmarks, `make tiny`), as a job
sees it: Hydra's runtime set, so that `${hydra:...}` resolves, and the config without Hydra's own
node."""
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

# the checkout's registry: conf/ is read where the suite is cloned
CONF = Path(__file__).parents[1] / "conf"


def compose(*overrides: str) -> DictConfig:
    """The composed job config for `overrides` (as on run.py's command line)."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = hydra_compose("config", overrides=list(overrides), return_hydra_config=True)
    # where a job run from this config writes its folder, as `python run.py` would set it
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(Path(cfg.hydra.run.dir).absolute())
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg.hydra
    return cfg
