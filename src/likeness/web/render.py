"""Rendering pages: the package's Jinja2 templates (autoescaped), with what every page shows (who is logged in,
the form token) and small filters for times, scores and hashes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from likeness import __version__
from likeness.web.sessions import Viewer

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else ""


def _query(params: dict[str, Any], **change: Any) -> str:
    """The current filters with some changed, as a query string (None drops one)."""
    merged = {k: v for k, v in {**params, **change}.items() if v not in (None, "")}
    return "?" + urlencode(merged) if merged else ""


templates.env.filters["when"] = _when
templates.env.filters["score"] = lambda v: f"{v:.3f}" if v is not None else "—"
templates.env.globals["query"] = _query
templates.env.globals["version"] = __version__


def page(
    request: Request, name: str, viewer: Viewer | None = None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    return templates.TemplateResponse(
        request, name, {"viewer": viewer, "csrf": viewer.csrf if viewer else None, **context}, status_code=status_code
    )
