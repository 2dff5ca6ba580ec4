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
# needs an NVIDIA GPU and nvcc (run where such a GPU is present, not in CI); or a placeholder to fill in
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


ANSWERING = ("estimate", "compare", "sweep")
TIMED = ("ttft_s", "tpot_s", "decode_tokens_per_s", "prefill_tokens_per_s", "usd_per_mtok_input",
         "usd_per_mtok_output", "usd_per_mtok_cached_input", "request_latency_s", "usd_per_request")


def _answers(data: object) -> list[dict]:
    """The rows of an estimate / compare / sweep JSON answer, each with fits_memory and its timed figures."""
    if isinstance(data, dict) and "series" in data:
        return [{"fits_memory": f, **{k: s[k][i] for k in TIMED if k in s}}
                for s in data["series"] for i, f in enumerate(s["fits_memory"])]
    return data if isinstance(data, list) else [data]


@pytest.mark.parametrize(("page", "command"), [(p, c) for p, c in COMMANDS if c.split()[1] in ANSWERING],
                         ids=[f"{p}: {c[:70]}" for p, c in COMMANDS if c.split()[1] in ANSWERING])
def test_doc_answers_are_for_configurations_that_run(tmp_path, monkeypatch, capsys, page, command):
    """Every estimate, compare and sweep example, asked for JSON: a time or a dollar figure only where the
    configuration fits; where it does not, null figures and a reason."""
    import json

    args = [a for a in shlex.split(command)[1:]]
    cut = [i for i, a in enumerate(args) if a in ("-f", "--format", "-o", "--output", "--plot")]
    for i in sorted(cut, reverse=True):
        del args[i:i + 2]
    monkeypatch.chdir(tmp_path)
    assert main([*args, "-f", "json", "-o", "answer.json"]) == 0, capsys.readouterr().err
    rows = _answers(json.loads((tmp_path / "answer.json").read_text()))
    assert rows
    for row in rows:
        figures = {k: row[k] for k in TIMED if k in row}
        if row["fits_memory"]:
            assert all(figures.get(k) is not None for k in ("ttft_s", "tpot_s", "usd_per_mtok_output")
                       if k in figures), f"{page}: `{command}`: {figures}"
        else:
            assert all(v is None for v in figures.values()), f"{page}: `{command}` prints figures for a " \
                                                             f"configuration that does not fit: {figures}"


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


def test_quoted_figures_match_the_data():
    """Every accuracy figure docs/figures.py lists is stated in its page as the committed data give it."""
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import figures
    finally:
        sys.path.pop(0)
    values = figures.figures()
    for page, sentence in figures.QUOTED:
        text = sentence.format(**values)
        assert text in (ROOT / page).read_text(encoding="utf-8"), f"{page} no longer says: {' '.join(text.split())}"
