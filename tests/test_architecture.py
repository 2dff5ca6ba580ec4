"""The package keeps the shape docs/architecture.md draws: a small public root, folders named after the
stages of the data flow, modules of one job each, and imports that only point to earlier stages."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "costsim"

# the stages in data-flow order: each may import the stages before it, plus the foundation
STAGES = ["output", "inputs", "families", "engine", "serving", "evidence", "analysis", "api", "cli"]
FOUNDATION = {"errors", "units", "spec"}
ROOT_MODULES = {"__init__.py", "api.py", "errors.py", "units.py"}
LINE_LIMIT = 400
LONGER_ALLOWED: dict[str, str] = {}  # module -> why (none today; docs/architecture.md would say)


def stage_of(module: str) -> str:
    """'costsim.serving.plan' -> 'serving'; the package root itself (costsim, costsim.__version__) -> ''."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and not parts[1].startswith("__") else ""


def imported(source: str) -> list[str]:
    """Every costsim module a source imports, at the top or inside a function."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("costsim"):
            if node.module == "costsim":
                names += [f"costsim.{a.name}" for a in node.names]
            else:
                names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names if a.name.startswith("costsim")]
    return names


def upward_imports(sources: dict[str, str]) -> list[tuple[str, str]]:
    """(importer, imported) for every import that points to a later stage, or from the foundation to a stage."""
    bad = []
    for module, source in sources.items():
        own = stage_of(module)
        for target in imported(source):
            to = stage_of(target)
            if to in ("", own) or own == "":  # the root's lazy exports name modules as strings, not imports
                continue
            if own in FOUNDATION:
                if to not in FOUNDATION:
                    bad.append((module, target))
            elif to not in FOUNDATION and STAGES.index(to) > STAGES.index(own):
                bad.append((module, target))
    return bad


def package_sources() -> dict[str, str]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[module] = path.read_text(encoding="utf-8")
    return out


def test_the_root_is_the_public_surface_and_the_folders_are_the_stages():
    modules = {p.name for p in PACKAGE.glob("*.py")}
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert modules == ROOT_MODULES
    assert len(modules) + 1 <= 5  # the four modules and the cli package
    assert folders == (set(STAGES) - {"api"}) | {"spec"}


def test_no_module_is_longer_than_the_limit():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > LINE_LIMIT}
    assert set(long) <= set(LONGER_ALLOWED), long


def test_imports_point_only_to_earlier_stages():
    sources = package_sources()
    assert len(sources) > 80  # the walk found the package
    assert upward_imports(sources) == []


def test_an_upward_import_is_caught():
    sources = package_sources()
    sources["costsim.families.toy"] = "def price():\n    from costsim.serving.plan import plan\n    return plan\n"
    sources["costsim.engine.toy"] = "from costsim.analysis.sweeps import sweep\n"
    sources["costsim.spec.toy"] = "from costsim.inputs.files import read_toml\n"
    assert sorted(upward_imports(sources)) == [("costsim.engine.toy", "costsim.analysis.sweeps"),
                                               ("costsim.families.toy", "costsim.serving.plan"),
                                               ("costsim.spec.toy", "costsim.inputs.files")]
    # and a downward one is not
    sources = package_sources()
    sources["costsim.analysis.toy"] = "from costsim.serving.plan import plan\nfrom costsim.spec.model import Layer\n"
    assert upward_imports(sources) == []


def test_architecture_md_describes_every_stage():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for folder in [*STAGES, "spec"]:
        name = "api.py" if folder == "api" else f"{folder}/"
        assert f"### `{name}`" in text, name
