"""The docs do not lie: every `costsim` command in a code block of README.md and docs/*.md runs and
exits 0, the Python snippets run, and docs/api.md matches the docstrings it is generated from."""

from __future__ import annotations

import glob
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from costsim.cli import main

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# needs an NVIDIA GPU and nvcc (checked on the lent machines, not in CI); or a placeholder to fill in
SKIP = re.compile(r"costsim bench |path/to|mine|mygpu|my-gpu|MODEL|FILE|<|\.\.\.\s|\[")


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def _commands() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for block in _blocks(page.read_text(encoding="utf-8"), "(?:bash|sh|)"):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.strip()
                if line.startswith("costsim ") and not SKIP.search(line):
                    found.append((page.name, line.split("  #")[0].split(" # ")[0].strip()))
    return found


COMMANDS = _commands()


def test_the_docs_have_examples():
    assert len(COMMANDS) >= 40
    assert {page for page, _ in COMMANDS} >= {"README.md", "getting-started.md", "deployments.md", "validation.md"}


@pytest.mark.parametrize(("page", "command"), COMMANDS, ids=[f"{p}: {c[:70]}" for p, c in COMMANDS])
def test_doc_command_runs(tmp_path, monkeypatch, capsys, page, command):
    args = []
    for arg in shlex.split(command)[1:]:
        if "*" in arg:
            matches = sorted(glob.glob(str(ROOT / arg)))
            assert matches, f"{arg} matches nothing"
            args += matches
        elif (ROOT / arg).exists() and "/" in arg:
            args.append(str(ROOT / arg))
        else:
            args.append(arg)
    monkeypatch.chdir(tmp_path)  # charts and -o files land here, not in the checkout
    code = main(args)
    out = capsys.readouterr()
    assert code == 0, f"{page}: `{command}` exited {code}: {out.err[-500:]}"


def test_python_snippets_run(tmp_path):
    """A page's Python blocks run in order in one interpreter (later blocks use earlier imports)."""
    ran = 0
    for page in PAGES:
        blocks = _blocks(page.read_text(encoding="utf-8"), "python")
        if not blocks:
            continue
        proc = subprocess.run([sys.executable, "-c", "\n".join(blocks)], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, f"{page.name}: {proc.stderr[-800:]}"
        ran += 1
    assert ran >= 3


def test_api_reference_is_current():
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import gen_api
    finally:
        sys.path.pop(0)
    assert (ROOT / "docs" / "api.md").read_text(encoding="utf-8") == gen_api.render(), \
        "docs/api.md is stale: run python docs/gen_api.py"
