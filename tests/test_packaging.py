"""The package as `pip install .` builds it (not the editable install the tests run on): every
module and the data files it reads (model configs, the shipped weights) are inside the wheel."""
import shutil
import subprocess
import sys
import zipfile

from helpers import ROOT

PACKAGES = ["ccup", "baselines", "benchmarks"]
DATA = ["ccup/model_configs/*.json", "ccup/weights/*.pt", "ccup/weights/*.json"]


def test_the_built_wheel_holds_every_module_and_data_file(tmp_path):
    # From a copy without build outputs: setuptools' build/ folder would lend the wheel files it no
    # longer packs.
    source = shutil.copytree(ROOT, tmp_path / "source", ignore=shutil.ignore_patterns(
        ".*", "build", "*.egg-info", "__pycache__", "results", "outputs", "multirun", "data"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "dist"), str(source)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    packed = set(zipfile.ZipFile(wheel).namelist())
    # ccup/hydra_plugins/ is installed as the `hydra_plugins` namespace package's portion, where
    # Hydra finds launchers.
    files = {path.relative_to(ROOT).as_posix().replace("ccup/hydra_plugins/", "hydra_plugins/")
             for package in PACKAGES for path in (ROOT / package).rglob("*.py")}
    data = {path.relative_to(ROOT).as_posix() for pattern in DATA for path in ROOT.glob(pattern)}
    assert files - packed == set() and data - packed == set()
    assert len(files) > 30 and len(data) >= 6
    assert {"ccup/evals/probe.py", "baselines/retrain.py",
            "hydra_plugins/ccup_launcher.py"} <= packed
