"""The overview: what the pipeline took in and found (totals, the last days as small bar charts), the queue's
health, honeypots missed, takedowns. Counts only: nothing about any subject or media."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response

from likeness.api.deps import AppDep
from likeness.schedule import monitor
from likeness.services import honeypots, stats
from likeness.web.render import page
from likeness.web.sessions import Reviewer

router = APIRouter()
SERIES = (("crawled", "places seen"), ("analysed", "media analysed"), ("faces", "faces found"),
          ("matches", "matches"))  # fmt: skip


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    height: float
    label: str


def bars(values: list[int], labels: list[str], width: float = 280, height: float = 80) -> list[Bar]:
    """Bars of an SVG chart, scaled to the largest value (drawn with SVG attributes: the CSP allows no inline
    style)."""
    top = max(values, default=0) or 1
    step = width / max(len(values), 1)
    return [Bar(round(i * step, 1), round(height - v / top * height, 1), round(v / top * height, 1), f"{lab}: {v}")
            for i, (v, lab) in enumerate(zip(values, labels, strict=True))]  # fmt: skip


@router.get("/overview")
def overview(request: Request, app: AppDep, viewer: Reviewer) -> Response:
    days = stats.per_day(app, 14)
    labels = [d.day.isoformat() for d in days]
    charts = [(title, sum(getattr(d, key) for d in days), bars([getattr(d, key) for d in days], labels))
              for key, title in SERIES]  # fmt: skip
    with app.store.transaction() as session:
        queue = monitor.queue_health(session, app.settings.schedule.worker_stale_s)
    return page(request, "overview.html", viewer, totals=stats.stats(app), charts=charts, first=labels[0],
                last=labels[-1], queue=queue, missed=honeypots.missed(app), takedowns=stats.takedowns(app))  # fmt: skip
