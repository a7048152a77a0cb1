# Every target sets up what it needs: on a fresh clone `make run` and `make test` are all there is to do.
VENV ?= .venv
PY := $(VENV)/bin/python
# This machine caps pip at these torch releases (/etc/xdg/pip); uv does not read the cap, so they are asked for by
# name. Elsewhere torch resolves from pyproject.toml.
TORCH := $(if $(wildcard /etc/xdg/pip),torch==2.14.1 torchvision==0.29.1)
FASHION_MNIST := /usr/share/datasets/fashion-mnist
ARGS ?= -m alpha=0,0.5,1
PYTEST_ARGS ?=
RESULTS ?= results

.PHONY: help install data run test test-cluster test-full tiny search paper bench report docs lint slurm slurm-stop

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# uv unpacks the packages side by side, pip one after another (a fresh install in about a third of pip's time). It
# compiles nothing, nor does a job where PYTHONDONTWRITEBYTECODE is set: importing what jobs and tests use compiles
# that, once, and no more (compiling all of torch would take as long again), in two imports side by side.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q uv
	$(VENV)/bin/uv pip install -q --python $(PY) $(TORCH) -e '.[dev,hf,docs]'
	PYTHONDONTWRITEBYTECODE= $(PY) -c 'import wandb, sklearn.datasets, pandas, matplotlib.pyplot, pytest, xdist' & \
		PYTHONDONTWRITEBYTECODE= $(PY) -c 'import run, ccup.report, ccup.evaluator, baselines.finetune' && wait $$!
	touch $@

install: $(VENV)/.installed  ## create .venv: the suite, its test tools, transformers (model=hf), MkDocs

data: install  ## make Fashion-MNIST available: Debian's package where apt works, else torchvision's download
	@if [ -d $(FASHION_MNIST) ] || [ -d data/FashionMNIST/raw ]; then echo "Fashion-MNIST: present"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null \
			&& echo "Fashion-MNIST: installed Debian's dataset-fashion-mnist"; \
	else \
		$(PY) -c "from torchvision.datasets import FashionMNIST as F; [F('data', train=t, download=True) for t in (True, False)]"; \
	fi

run: data  ## the default sweep on the embedded model (ARGS="-m alpha=0,0.5,1"), then the report
	$(PY) run.py $(ARGS)
	$(PY) -m ccup.report

# A worker per core: a test that waits on a job it started leaves the core to that job. Every worker more imports
# torch, Lightning and open_clip again (on 2 cores: 290 s with 2 workers, 292 s with 3, 304 s with 4). A core, not
# a thread: nproc takes OMP_NUM_THREADS as its answer where it is set (`OMP_NUM_THREADS=1 make test`: one worker).
# Modules start in the order tests/conftest.py gives (the longest first), not xdist's (the most tests first).
PYTEST := $(PY) -m pytest -n $$(OMP_NUM_THREADS= OMP_THREAD_LIMIT= nproc) --dist loadfile --no-loadscope-reorder
test: data  ## the tests, test modules side by side (each on one worker: its fixtures computed once)
	$(PYTEST) -m "not recipe and not cluster" $(PYTEST_ARGS)

test-cluster: data  ## the tests on a real single-node SLURM cluster, which they start (.ci/slurm: root); CI runs them
	$(PY) -m pytest -m cluster $(PYTEST_ARGS)

test-full: data  ## every test: the cluster's, and every training method's full default recipe (minutes more)
	$(PYTEST) $(PYTEST_ARGS)

MODEL ?= tiny
tiny: data  ## retrain an embedded model (MODEL=tiny_rn: the ResNet) and compare it with the shipped weights (SHIP=1: ship)
	$(PY) -m ccup.tiny --model $(MODEL) $(if $(SHIP),--ship)

SEARCHES ?= $(basename $(notdir $(wildcard conf/hparams_search/*.yaml)))
search: data  ## every method's search on the validation classes (SEARCHES="ccup salun": some), two trials at a time
	for method in $(SEARCHES); do \
		$(PY) run.py -m hparams_search=$$method hydra/launcher=joblib hydra.launcher.n_jobs=2 || exit 1; done

paper: data  ## the embedded benchmark and leakage sweep into results/benchmark, results/leakage (hours on 2 cores)
	$(PY) run.py -m experiment=benchmark hydra/launcher=joblib hydra.launcher.n_jobs=2
	$(PY) run.py -m experiment=leakage hydra/launcher=joblib hydra.launcher.n_jobs=2

bench: data  ## the benchmarks: speed ratios measured side by side
	$(PY) -m benchmarks

report: install  ## tables and plots from the records in results/ (RESULTS=results/ablation: another folder)
	$(PY) -m ccup.report $(RESULTS)

# --strict: a link to a page or heading that is not there, or a page left out of the nav, fails the build.
docs: install  ## the documentation site: docs/ into site/ (mkdocs build --strict)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

lint: install  ## ruff
	$(PY) -m ruff check .

slurm:  ## start a single-node SLURM cluster on this machine (root), for hydra/launcher=slurm
	.ci/slurm start

slurm-stop:  ## stop it
	.ci/slurm stop
