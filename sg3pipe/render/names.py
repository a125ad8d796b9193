"""Names of the rendered variants and videos, shared by the renderer and the workflow (no torch: the workflow
imports this when it builds the DAG)."""

from __future__ import annotations

from collections.abc import Iterable


def factor_label(factor: float) -> str:
    """A factor as it appears in variant and file names: ``2.0 -> "2"``, ``-1.5 -> "-1.5"``."""
    return f"{factor:g}"


def edit_variant_name(edit: str, factor: float) -> str:
    """The variant (and video) name of edit ``edit`` at ``factor``: ``edit-{edit}-{factor_label(factor)}``."""
    return f"edit-{edit}-{factor_label(factor)}"


def pasteback_name(variant: str) -> str:
    """The paste-back video name of an edit variant: ``edit-{edit}-{factor}`` -> ``pasteback-{edit}-{factor}``."""
    return f"pasteback-{variant.removeprefix('edit-')}"


def video_names(edits: Iterable[tuple[str, Iterable[float]]], pasteback: bool) -> list[str]:
    """The ``.mp4`` names (without suffix) rule render writes for edits ``[(name, factors), ...]``, in order:
    ``reconstruction``, ``smoothed``, ``pti``, each ``edit-*``, ``fov``, ``side_by_side`` and, with
    paste-back, ``pasteback-{edit}-{factor}`` for each edit variant."""
    variants = [edit_variant_name(name, factor) for name, factors in edits for factor in factors]
    pasted = [pasteback_name(name) for name in variants] if pasteback else []
    return ["reconstruction", "smoothed", "pti", *variants, "fov", "side_by_side", *pasted]
