"""The Python API as README writes it, in a fresh interpreter: its numbers, and nothing printed but
them."""
import pytest
from helpers import ROOT, run_python

pytestmark = pytest.mark.slow


def test_readmes_python_snippet_runs_as_written_and_prints_only_its_line(tmp_path, tiny):
    readme = (ROOT / "README.md").read_text()
    snippet = readme.split("## From Python")[1].split("```python\n")[1].split("```")[0]
    script = tmp_path / "snippet.py"
    script.write_text(snippet + "assert finetuned is not model and unlearned is not model\n"
                      "print(sum((a != b).sum().item() for a, b in zip(finetuned.parameters(), "
                      "model.parameters())))\n")
    result = run_python(str(script))
    assert result.returncode == 0, result.stderr
    line, changed = result.stdout.strip().splitlines()  # no banners, no progress bars
    assert f"prints `{line}`" in readme and line.startswith("forget 0.30 (before 97.40)")
    assert int(changed) > 0 and result.stderr == ""
