"""README and the documentation site (docs/) against what they describe: every `python run.py`
they show composes into jobs that would start, every `make` target they name exists, the options
of their config-group tables are options, README's links reach their pages and headings, and the
test catalogue names every test module."""
import functools
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from helpers import ROOT, compose, page, write_image_folder
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.utils import create_config_search_path
from hydra.core.override_parser.overrides_parser import OverridesParser
from markdown.extensions.toc import slugify

import run
from ccup.configs import CONF
from ccup.errors import check_group_choices, check_keywords, check_values
from ccup.job import Job, new_record
from ccup.record import NOT_IDENTITY

# Its commands run with the page's own folder on the search path (--config-dir), which
# tests/test_extending.py writes as the page gives it and runs.
RUN_ELSEWHERE = {"extending.md"}
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
COMMAND = re.compile(r"^\s*(?:\$ )?(?:\.venv/bin/)?python run\.py\b(.*)$")
LOADER = ConfigLoaderImpl(config_search_path=create_config_search_path(str(CONF)))


def pages() -> dict[str, str]:
    """README.md and every page of docs/, by name."""
    docs = {path.name: path.read_text() for path in (ROOT / "docs").glob("*.md")}
    return {"README.md": page("README.md"), **docs}


def code(text: str) -> list[str]:
    """What a page shows as code: its fenced blocks, its indented blocks and its inline spans
    (which may break across a line), each with continuation lines joined."""
    prose = FENCE.sub("", text)
    pieces = FENCE.findall(text) + re.findall(r"(?:^    .*\n)+", prose, re.M)
    spans = re.findall(r"`([^`]+)`", prose)
    pieces += [span.replace("\n", " ") for span in spans if "\n\n" not in span]
    return [piece.replace("\\\n", " ") for piece in pieces]


def commands(text: str) -> list[str]:
    """The arguments of each `python run.py` a page shows, but for those shown with the `error:`
    line they get (tests/test_configs.py checks those lines)."""
    found = []
    for piece in code(text):
        lines = piece.splitlines()
        for line, after in zip(lines, [*lines[1:], ""], strict=True):
            if (match := COMMAND.match(line)) and not after.startswith("error: "):
                found.append(match[1].strip())
    return found


SHOWN = sorted((name, args) for name, text in pages().items() if name not in RUN_ELSEWHERE
               for args in set(commands(text)))


def jobs(overrides: list[str]) -> list[list[str]]:
    """Jobs of a sweep in which every option of every config group it sweeps runs, and the first
    and last value of every other axis (seed=range(24): 0 and 23), job i taking each axis' value
    i, cycling: what could fail to compose, without the whole product of the axes."""
    parser = OverridesParser.create(config_loader=LOADER)  # glob(*) read from conf/
    axes = []
    for override in parser.parse_overrides(overrides):
        if not override.is_sweep_override():
            axes.append([override.input_line])
            continue
        key = override.get_key_element()
        values = [f"{key}={value}" for value in override.sweep_string_iterator()]
        group = LOADER.repository.group_exists(override.key_or_group)
        axes.append(values if group else [values[0], values[-1]])
    return [[axis[i % len(axis)] for axis in axes] for i in range(max(map(len, axes), default=1))]


def write_folders(overrides: list[str], where: Path) -> None:
    """The image folder a command reads (`dataset.root`), under `where`, with a class folder for
    each class it names (`dataset.names`): what a reader of the page has."""
    given = {o.key_or_group: o.value() for o in OverridesParser.create().parse_overrides(overrides)}
    if "dataset.root" in given:
        folders = {folder: [0] for folder in given.get("dataset.names", {})}
        write_image_folder(where / given["dataset.root"], folders)


@functools.cache  # pages share jobs (README's alpha sweep is the running page's too)
def starts(job: tuple[str, ...]) -> None:
    """Refuse the job's config as a job does before any work (ccup.job.recorded)."""
    cfg = compose(*job)
    record = new_record(cfg, Job.from_hydra())
    check_values(record["config"], skip=NOT_IDENTITY)
    check_keywords(record["config"], skip=NOT_IDENTITY)


def test_the_pages_show_commands_and_each_is_collected():
    assert len(SHOWN) >= 30
    assert {name for name, _ in SHOWN} >= {"README.md", "sweeps.md", "protocol.md", "running.md"}
    readme = [args for name, args in SHOWN if name == "README.md"]
    assert any(args.startswith("forget.classes=[coat,shirt] ") for args in readme)  # and a comment


@pytest.mark.parametrize("name, args", SHOWN)
def test_each_command_shown_composes_into_jobs_that_would_start(name, args, tmp_path,
                                                                monkeypatch):
    flags, overrides = run.flags_first(shlex.split(args, comments=True))
    shown = f"{name}: `python run.py {args}`"
    assert set(flags) <= {"-m", "--multirun"}, f"{shown}: a flag this test does not know"
    monkeypatch.chdir(tmp_path)  # where the command's relative paths lie
    write_folders(overrides, tmp_path)
    check_group_choices(overrides, CONF)  # as run.py does, before Hydra composes
    sweep = jobs(overrides)
    assert flags or len(sweep) == 1, f"{shown} sweeps without -m"
    for job in sweep:
        starts(tuple(job))


def test_every_make_target_a_page_names_is_one_make_help_lists():
    listed = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout
    targets = set(re.findall(r"^  make (\S+)", listed, re.M))
    named = {(name, target) for name, text in pages().items() for piece in code(text)
             for target in re.findall(r"(?:^|[\s(;])make ([a-z][a-z-]*)", piece)}
    assert {"run", "test", "docs", "paper", "slurm"} <= {target for _, target in named}
    assert {(name, target) for name, target in named if target not in targets} == set()


def test_the_config_group_tables_name_only_options_of_their_groups():
    rows = [(name, row) for name, text in pages().items() for table in text.split("\n\n")
            if table.startswith("| group |") for row in table.splitlines()[2:]]
    assert {name for name, _ in rows} == {"README.md", "running.md"} and len(rows) >= 20
    for name, row in rows:
        group, options = (cell.strip() for cell in row.split("|")[1:3])
        group = group.strip("`/")
        named = {option for option in re.findall(r"`([^`]+)`", options)
                 if re.fullmatch(r"\w+", option)}
        assert named, f"{name}: {group}: no option named"
        assert named <= set(LOADER.get_group_options(group)), f"{name}: {group} has no {named}"


def headings(text: str) -> set[str]:
    """The anchors of a page's headings, as MkDocs (and, for these headings, GitHub) writes them."""
    return {slugify(title, "-") for title in re.findall(r"^#+ (.+)$", FENCE.sub("", text), re.M)}


def test_readmes_links_reach_their_files_and_headings():
    links = re.findall(r"\]\(([^)\s]+)\)", FENCE.sub("", page("README.md")))
    local = [link for link in links if not re.match(r"\w+://", link)]
    assert len(local) >= 20 and {"docs/benchmark.md", "docs/extending.md"} <= set(local)
    for link in local:
        path, _, anchor = link.partition("#")
        target = ROOT / (path or "README.md")
        assert target.is_file(), f"README links to {link}: no such file"
        assert not anchor or anchor in headings(target.read_text()), f"README: {link}: no heading"


def test_the_test_catalogue_names_every_test_module_and_no_other():
    named = set(re.findall(r"\btest_\w+\.py\b", page("tests.md")))
    assert named == {path.name for path in (ROOT / "tests").glob("test_*.py")}


def test_readme_is_a_landing_page():
    readme = page("README.md")
    assert len(readme.splitlines()) <= 300 and "## Contents" in readme


def test_each_module_of_the_package_reads_in_one_sitting():
    long = {path.name: n for path in (ROOT / "ccup").rglob("*.py")
            if (n := len(path.read_text().splitlines())) > 300}
    assert not long, f"modules over 300 lines: {long}"
