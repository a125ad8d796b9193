"""The project's two dependency lists agree and bring everything the workflow, its report and the CLI import;
CI runs the README's first command as written; the layout of the design card is there."""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.metadata
import importlib.util
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"


def test_environment_yml_lists_the_pyproject_dependencies():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    pip_section = next(item["pip"] for item in env if isinstance(item, dict))
    assert sorted(pip_section) == sorted(pyproject)


def test_design_card_layout_exists():
    for path in (
        "Snakefile",
        "rules",
        "scripts",
        "sg3pipe",
        "config",
        "tests",
        "environment.yml",
        "profiles/default",
        "benchmarks",
        "README.md",
        ".ci/run",
    ):
        assert (ROOT / path).exists(), path


# --- What `pip install -e .` (no extras) brings, against what the workflow, the report and the CLI import ---

# Third-party modules that `snakemake --report` imports. Snakemake imports most of them only while it writes the
# report, and pygments sits behind a try that turns its absence into "Python package pygments must be installed
# to create reports" (it is in snakemake's `reports` extra, not in its core requirements).
NEEDED_BY_SNAKEMAKE_REPORT = ("pygments", "jinja2", "docutils", "humanfriendly", "yte", "yaml", "requests")

# Imports sg3pipe makes optional on purpose; each one sits in a `try` that catches ImportError
# (test_optional_imports_are_guarded checks that), so none of these can hide a dependency the workflow needs.
OPTIONAL_IMPORTS = {
    # OpenAI's CLIP (clip-anytorch, a dev extra): only StyleCLIP directions use it, they are off by default
    # (directions.styleclip: null), and sg3pipe.editing.styleclip.import_clip says how to install it.
    "clip",
}

FIRST_PARTY = {"sg3pipe"}

# `import a.b as c, d` and `from a.b import c` in Snakemake files, which ast cannot parse.
_SMK_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+([\w.]+)[ \t]+import\b|import[ \t]+([\w., \t]+))", re.M)


def _python_files() -> list[Path]:
    return sorted(p for folder in ("sg3pipe", "scripts", "report") for p in (ROOT / folder).rglob("*.py"))


def _snakemake_files() -> list[Path]:
    return [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def _python_imports(tree: ast.Module) -> Iterator[tuple[str, ast.stmt]]:
    """(top-level module, import statement) for every absolute import in a Python module, at any depth."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.partition(".")[0], node
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.partition(".")[0], node


def _snakemake_imports(path: Path) -> Iterator[str]:
    for match in _SMK_IMPORT.finditer(path.read_text()):
        modules = [match.group(1)] if match.group(1) else match.group(2).split(",")
        for module in modules:
            if module.strip():
                yield module.split()[0].partition(".")[0]


def _third_party(module: str) -> bool:
    return module not in sys.stdlib_module_names and module not in FIRST_PARTY


def _workflow_imports() -> dict[str, set[str]]:
    """Third-party top-level module -> the files (relative to the checkout) that import it."""
    found: dict[str, set[str]] = {}
    for path in _python_files():
        for module, _ in _python_imports(_parse(path)):
            found.setdefault(module, set()).add(str(path.relative_to(ROOT)))
    for path in _snakemake_files():
        for module in _snakemake_imports(path):
            found.setdefault(module, set()).add(str(path.relative_to(ROOT)))
    return {module: files for module, files in found.items() if _third_party(module)}


def _core_closure(dependencies: list[str] | None = None) -> set[str]:
    """Canonical names of the distributions `pip install -e .` brings: pyproject's dependencies (or the
    requirement strings given) and, recursively, what each installed one requires. A requirement under an extra
    counts only where the extra was asked for (``snakemake[reports]``); other markers (platform, Python version)
    are evaluated for this machine."""
    if dependencies is None:
        dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    pending = [Requirement(spec) for spec in dependencies]
    closure: set[str] = set()
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in closure:
            continue
        closure.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue  # not installed here: its own requirements cannot be read
        extras = {""} | requirement.extras
        for spec in requires:
            sub = Requirement(spec)
            if sub.marker is None or any(sub.marker.evaluate({"extra": extra}) for extra in extras):
                pending.append(sub)
    return closure


def _distributions_of(module: str) -> set[str]:
    """Canonical names of the installed distributions that provide a top-level module. A wheel's top_level.txt
    can be wrong (dlib-bin lists only `_dlib_pybind11`), so where it names none the owner of the module's files
    is looked up."""
    names = set(importlib.metadata.packages_distributions().get(module, ()))
    if not names:
        owned = (f"{module}/__init__.py", f"{module}.py")
        for dist in importlib.metadata.distributions():
            if any(str(file) in owned for file in dist.files or ()):
                names.add(dist.metadata["Name"])
    return {canonicalize_name(name) for name in names}


def test_the_core_dependencies_bring_every_import_of_the_workflow_the_report_and_the_cli():
    needed = {module: files for module, files in _workflow_imports().items() if module not in OPTIONAL_IMPORTS}
    for module in NEEDED_BY_SNAKEMAKE_REPORT:
        needed.setdefault(module, set()).add("needed by snakemake --report")
    closure = _core_closure()
    missing = []
    for module, files in sorted(needed.items()):
        distributions = _distributions_of(module)
        if not distributions & closure:
            where = ", ".join(sorted(files)[:3]) + (", ..." if len(files) > 3 else "")
            found = ", ".join(sorted(distributions)) or "no installed distribution"
            missing.append(f"{module} ({found}), for {where}")
    assert not missing, "not brought by `pip install -e .` (add to pyproject.toml and environment.yml):\n" + "\n".join(
        missing
    )


def test_the_closure_follows_requested_extras_only():
    """pygments is in snakemake's `reports` extra: without the extra the closure has no pygments, and the check
    above names it as missing."""
    assert "pygments" not in _core_closure(["snakemake>=9"])
    assert "pygments" in _core_closure(["snakemake[reports]>=9"])


def test_optional_imports_are_guarded():
    """Every import of an allow-listed module is in a `try` whose handlers catch ImportError."""
    unguarded = []
    for path in _python_files():
        tree = _parse(path)
        guarded = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.Try) and any(_catches_import_error(h) for h in node.handlers)
            for statement in node.body
            for inner in ast.walk(statement)
        }
        for module, node in _python_imports(tree):
            if module in OPTIONAL_IMPORTS and id(node) not in guarded:
                unguarded.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {module} outside a try")
    for path in _snakemake_files():
        unguarded += [
            f"{path.relative_to(ROOT)} imports {m}" for m in _snakemake_imports(path) if m in OPTIONAL_IMPORTS
        ]
    assert not unguarded, "\n".join(unguarded)


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(t, ast.Name) and t.id in ("ImportError", "ModuleNotFoundError") for t in types)


def test_the_report_list_covers_what_snakemakes_report_code_imports():
    """A newer snakemake that imports another package while writing the report shows up here."""
    report_code = Path(importlib.util.find_spec("snakemake").origin).parent / "report"
    imported = {module for path in report_code.rglob("*.py") for module, _ in _python_imports(_parse(path))}
    own = {m for m in imported if m == "snakemake" or m.startswith("snakemake_")}  # snakemake's core requirements
    assert {m for m in imported if _third_party(m)} - own <= set(NEEDED_BY_SNAKEMAKE_REPORT)


# --- The README's first command, run in CI as a newcomer runs it (.ci/quickstart) ---


def _quickstart_module():
    loader = importlib.machinery.SourceFileLoader("quickstart", str(ROOT / ".ci" / "quickstart"))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("quickstart", loader))
    loader.exec_module(module)
    return module


def test_the_quickstart_guard_reads_the_two_commands_of_the_readme():
    commands = _quickstart_module().quickstart_commands((ROOT / "README.md").read_text())
    assert len(commands) == 2, commands
    first, second = commands
    assert first.startswith("python -m pip install -e . ") and "--report" in first  # installs no extras
    assert "[dev]" in second and "pytest" in second


def test_the_quickstart_guard_reads_only_the_quick_start_section():
    readme = (
        "# x\n\n```bash\nnot this\n```\n\n## Quick start\n\nSome text.\n\n```bash\none\n\n# a comment\ntwo\n```\n\n"
        "```bash\nnor this\n```\n\n## Next\n\n```bash\nnor this\n```\n"
    )
    assert _quickstart_module().quickstart_commands(readme) == ["one", "two"]
    with pytest.raises(ValueError):
        _quickstart_module().quickstart_commands("## Quick start\n\nno block\n\n## Next\n\n```bash\nx\n```\n")


def test_ci_runs_the_quickstart_guard():
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert any(line.startswith("python .ci/quickstart") for line in lines if not line.startswith("#"))
