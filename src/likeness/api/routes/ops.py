"""Scanning URLs, crawls (status, start) and the counts."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Request

from likeness.api import schemas
from likeness.api.deps import AppDep, CrawlsRead, CrawlsWrite, Scan, Stats, shadowed
from likeness.api.uploads import hold
from likeness.services import crawl, scan, stats

router = APIRouter(tags=["operations"])


@router.post("/scan", response_model=schemas.ScanSummary)
def scan_urls(body: schemas.ScanIn, request: Request, app: AppDep, principal: Scan) -> scan.ScanSummary:
    """Fetch and scan http(s) URLs (never a local path; the SSRF guard refuses private addresses)."""
    if shadowed(request):
        hold(request, app, "scan", {"urls": body.urls})
        return scan.ScanSummary(files=len(body.urls))
    return scan.scan(app, body.urls, actor=principal.actor)


@router.get("/crawls", response_model=schemas.Crawls)
def crawl_status(request: Request, app: AppDep, principal: CrawlsRead) -> schemas.Crawls:
    running = request.app.state.crawls.running()
    found = [
        schemas.Crawl.model_validate({**dataclasses.asdict(c), "running": c.source in running})
        for c in crawl.status(app)
    ]
    return schemas.Crawls(crawls=found)


@router.post("/crawls", response_model=schemas.CrawlStarted, status_code=202)
def start_crawl(body: schemas.CrawlIn, request: Request, app: AppDep, principal: CrawlsWrite) -> schemas.CrawlStarted:
    """Start a crawl in the background (409 when one of that source runs); GET /v1/crawls follows it."""
    if shadowed(request):
        hold(request, app, "crawl", body.model_dump())
        return schemas.CrawlStarted(source=body.source, started=True)
    name = request.app.state.crawls.start(app, body.source, body.query, body.max_pages, actor=principal.actor)
    return schemas.CrawlStarted(source=name, started=True)


@router.get("/stats", response_model=schemas.Stats)
def get_stats(app: AppDep, principal: Stats) -> schemas.Stats:
    return schemas.Stats(counts=_flat(dataclasses.asdict(stats.stats(app))))


def _flat(values: dict[str, object], prefix: str = "") -> dict[str, int]:
    """Nested counts (matches by status) as ``matches.new``."""
    flat: dict[str, int] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        elif isinstance(value, int | float):
            flat[f"{prefix}{key}"] = int(value)
    return flat
