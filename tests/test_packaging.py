"""The project's two dependency lists agree, and the layout of the design card is there."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


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
