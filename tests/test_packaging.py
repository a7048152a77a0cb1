"""The package as `pip install .` builds it (not the editable install the tests run on): every
module imports from the wheel, and the data files it reads (model configs, the shipped weights) are
inside."""
import shutil
import subprocess
import sys

from helpers import ROOT

PACKAGES = ["ccup", "baselines", "benchmarks"]


def test_the_built_wheel_holds_every_module_and_data_file(tmp_path):
    # From a copy without build outputs: setuptools' build/ folder would lend the wheel files it no
    # longer packs.
    source = shutil.copytree(ROOT, tmp_path / "source", ignore=shutil.ignore_patterns(
        ".*", "build", "*.egg-info", "__pycache__", "results", "outputs", "multirun", "data"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "dist"), str(source)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(tmp_path / "site"), str(wheel)], check=True, capture_output=True)
    # ccup/hydra_plugins/ is installed as the `hydra_plugins` namespace package's portion, where
    # Hydra finds launchers.
    modules = sorted(".".join(path.relative_to(ROOT).with_suffix("").parts)
                     .removesuffix(".__init__").replace("ccup.hydra_plugins.", "hydra_plugins.")
                     for package in PACKAGES for path in (ROOT / package).rglob("*.py"))
    script = ("import importlib, sys\n"
              f"for name in {modules!r}:\n"
              "    module = importlib.import_module(name)\n"
              f"    assert module.__file__.startswith({str(tmp_path / 'site')!r}), "
              "module.__file__\nfrom ccup.tiny import SHIPPED\n"
              "assert list(SHIPPED.glob('*.pt')), SHIPPED\n")
    # Run outside the repository, the wheel's folder first: the checkout is not on the path.
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, env={"PYTHONPATH": str(tmp_path / "site"),
                                            "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert len(modules) > 30
    assert {"ccup.evals.probe", "baselines.retrain", "hydra_plugins.ccup_launcher"} <= set(modules)
