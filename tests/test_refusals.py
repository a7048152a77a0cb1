"""Bad input, end to end: each place a job can refuse its input ends the command with one `error:`
line and a failed record; a command line Hydra cannot compose ends with one `error:` line naming
what exists."""
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import ROOT, records, run_job, run_suite, suite_in_process

pytestmark = pytest.mark.slow


# One case per place a job can refuse its input (config values, method settings, the forget set, the
# data, the model); every message of each place is tested where it is raised, in process
# (test_sweeps.py: NaN, numbers in quotes, seeds; test_task.py: forget sets; test_projection.py,
# test_baselines.py, test_heads.py). A method's range check (alpha=2) fails a job of
# test_sweeps.py's sweep, with its W&B run marked failed.
BAD_INPUTS = {
    "alpha=nan": "alpha=nan is not a number",
    "method=finetune;method.lr=0": "lr must be a positive finite number",
    "dataset.load.roots=[/nonexistent]": "Fashion-MNIST not found in ['/nonexistent']: run "
                                         "`make data`",
    "model=vit_b32_openai;model.name=ViT-B-99": "unknown open_clip model 'ViT-B-99'",
    "model=vit_b32_openai": "the 'openai' weights of ViT-B-32 are not on this machine and their "
                            "host does not answer",
    "model=vit_b32_openai;model.pretrained=README.md": "README.md is not a checkpoint of ViT-B-32",
    "method=retrain;model=vit_b32_openai": "comes with pretrained weights whose training data and "
                                           "recipe the suite",
    "method=grad_ascent;trainer.accelerator=nosuch":
        "Lightning refuses the Trainer settings trainer.*: ValueError: You selected an invalid "
        "accelerator name",
    "evaluator.batch_size=0": "evaluator.batch_size must be at least 1",
    "dataset=cifar10;forget.classes=[cat]": "CIFAR-10 not found or incomplete in",
    "+model.pretrained=x.pt": "model.pretrained: the embedded model (model=tiny) is trained by its "
                              "recipe and loads no checkpoint; load one with an open_clip model "
                              "config",
}
# A bad input run alone, found once Lightning and the model are loaded: the message is the last line
# of the command and the only one on its standard error. (A key the embedded model does not take,
# added with `+`, is refused before any work; without `+`, Hydra's composition refuses it,
# test_configs.py.)
ALONE = {"evaluator.batch_size=0": BAD_INPUTS["evaluator.batch_size=0"]}
# A flag among the overrides (Hydra's parser takes the overrides as one run of words): a config
# folder of the test's own, with a forget set of the digits, a job that exports its model.
FLAG_AMONG = ("debug=default", "dataset=digits", "--config-dir", "{conf}", "forget=three",
              "export=true")
# A command line Hydra cannot compose into a config: no job starts, so there is no record either
# (every message of ccup.errors.composition_error and of check_group_choices is tested in
# test_configs.py).
# A config that composes but does not resolve, or names a class its dataset does not have (checked
# first, before the rest resolves): no identity, so the failed record lies in the job's folder
# alone.
UNRESOLVED = {
    "forget.classes=[sandals]": "error: unknown forget class 'sandals': did you mean 'sandal'?",
    # a garment
    "dataset=cifar10": "error: unknown forget class 'sandal': the dataset's classes are 'airplane'",
    "forget.classes=[t-shirt,trouser,pullover,dress,coat,sandal,shirt,sneaker,bag,ankle boot]":
        "error: cannot forget every class",
    "alpha=${nope}": "error: the config does not resolve: Interpolation key 'nope' not found",
    "method=base/finetune": "error: no value for method.lr, method.steps (???): set it, e.g. "
                            "method.lr=...",
    "dataset=cifar10;forget=protocol_1": "error: dataset=cifar10 has no published protocol forget "
                                         "classes (protocol_forget), so forget=protocol_* has "
                                         "nothing to pick",
    "dataset=folder;dataset.root=/nonexistent": "error: dataset.root=/nonexistent: no such folder; "
                                                "a folder dataset reads "
                                                "/nonexistent/train/<class>/*",
}
UNCOMPOSED = {
    "method=ccupp": "error: method=ccupp: no such option; did you mean 'ccup'? method has ccup, "
                    "finetune, grad_ascent,",
    "alpha=[": "error: cannot read the override 'alpha=[': no viable alternative at input '['",
    "forget=5": "error: forget=5: an option of forget is the name of a file in conf/forget/, not "
                "a number",
    "forget=[sandal,bag]": "error: forget=[sandal,bag]: forget takes one option",
}


@pytest.fixture(scope="module")
def refusals(tmp_path_factory, tiny) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    """The command lines that do not compose and one bad input run alone, each a command of its
    own, run side by side. (`tiny`: the run that loads the embedded model finds it ready.)"""
    started = {}
    for override in [*ALONE, *UNRESOLVED, *UNCOMPOSED]:
        started[override] = (tmp_path_factory.mktemp("refused"),
                             [*override.split(";"), "logger=none"])
    with ThreadPoolExecutor(4) as pool:  # each waits on its own process
        ended = pool.map(lambda command: run_suite(command[0], *command[1]), started.values())
        return {name: (folder, result)
                for (name, (folder, _)), result in zip(started.items(), ended, strict=True)}


@pytest.mark.parametrize("override", BAD_INPUTS)
def test_bad_input_fails_its_job_with_one_error_line_and_a_failed_record(tmp_path, tiny, caplog,
                                                                         override):
    # as one job of a sweep
    run_job(tmp_path, *override.split(";"), "logger=none", debug=False, sweeping=True)
    (job,) = records(tmp_path)
    assert job["status"] == "failed" and BAD_INPUTS[override] in job["error"]
    assert [message for message in caplog.messages
            if message.startswith("error: ")] == [f"error: {job['error']}"]
    assert not any(record.exc_info for record in caplog.records) and "Traceback" not in caplog.text


@pytest.mark.parametrize("override", ALONE)
def test_a_bad_input_alone_ends_the_command_with_one_error_line(refusals, override):
    tmp_path, result = refusals[override]
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    (failed,) = records(tmp_path)
    assert failed["status"] == "failed" and failed["error"].startswith(ALONE[override])
    assert result.stderr.strip() == f"error: {failed['error']}"


def test_a_flag_goes_anywhere_and_the_job_ends_naming_its_record_and_model(tmp_path, tiny):
    conf = tmp_path / "conf"
    (conf / "forget").mkdir(parents=True)
    (conf / "forget" / "three.yaml").write_text("classes: ['3']\n")
    result = suite_in_process(tmp_path, *(arg.format(conf=conf) for arg in FLAG_AMONG))
    assert result.exit is None, result.stdout
    (record,) = records(tmp_path)
    assert record["config"]["forget"]["classes"] == ["3"]  # from the folder --config-dir added
    done = [line.split(" - ", 1)[1] for line in result.stdout.splitlines() if " - done in " in line]
    assert len(done) == 1 and done[0].endswith(f"; record {tmp_path}/results/records/{record['id']}"
                                               f".json, checkpoint {tmp_path}/outputs/checkpoint")
    assert (tmp_path / "outputs" / "checkpoint" / "unlearned.pt").is_file()


@pytest.mark.parametrize("override", UNCOMPOSED)
def test_a_command_line_that_does_not_compose_gets_one_error_line_naming_what_exists(
        refusals, override):
    tmp_path, result = refusals[override]
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith(UNCOMPOSED[override]), result.stderr
    assert "Traceback" not in result.stderr and "Config search path" not in result.stderr
    assert not (tmp_path / "results").exists()  # nothing ran


@pytest.mark.parametrize("override", UNRESOLVED)
def test_a_config_that_does_not_resolve_fails_its_job_with_one_error_line(refusals, override):
    tmp_path, result = refusals[override]
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(UNRESOLVED[override]), result.stderr
    record = json.loads((tmp_path / "outputs" / "record.json").read_text())
    assert (record["status"] == "failed"
            and f"error: {record['error']}" == result.stderr.strip().splitlines()[-1])
    assert (record["overrides"][:override.count(";") + 1] == override.split(";")
            and not (tmp_path / "results").exists())


@pytest.mark.parametrize("mistake", [["metod=ccup"], ["forget.classes=[sandl]"], ["method=ccupp"]])
def test_a_mistake_is_answered_before_torch_lightning_and_open_clip_are_imported(mistake):
    code = ("import runpy, sys\n"
            f"sys.argv = ['run.py', *{mistake!r}, 'logger=none']\n"
            "try:\n    runpy.run_path('run.py', run_name='__main__')\n"
            "except SystemExit as exc:\n    print(exc.code, file=sys.stderr)\n"
            "print(sorted({'torch', 'pytorch_lightning', 'open_clip', 'pandas'} & "
            "set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert (result.stderr.strip().splitlines()[-1].startswith("error: ")
            and result.stdout.strip() == "[]")
