"""Tables as small standalone HTML pages: what the run report shows for a table."""

from __future__ import annotations

import html
import os

import pandas as pd

from sg3pipe.io.atomic import atomic_path


def html_table(path: str | os.PathLike, table: pd.DataFrame, title: str, float_format: str = "{:.3f}") -> None:
    """``table`` as a small standalone HTML page with a heading (what the report shows for a table)."""
    body = table.to_html(index=False, float_format=float_format.format, na_rep="", border=0)
    style = "body{font-family:sans-serif} table{border-collapse:collapse} td,th{padding:2px 8px;text-align:right}"
    title = html.escape(title)
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title><style>{style}</style></head>"
        f"<body><h3>{title}</h3>{body}</body></html>"
    )
    with atomic_path(path) as tmp:
        tmp.write_text(page)
