"""``likeness crawl ...``: one command per platform, each building a source and calling the crawl service."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from enum import Enum, StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from likeness.cli import output
from likeness.cli.shell import FAILED, Format, err, out, session, typer_app, usage

if TYPE_CHECKING:
    from likeness.sources.base import Source

crawl_app = typer_app("Crawl platforms, newest first; later runs pick up only what is new.")


class Period(StrEnum):
    AllTime = "AllTime"
    Year = "Year"
    Month = "Month"
    Week = "Week"
    Day = "Day"


class CivitaiNsfw(StrEnum):
    None_ = "None"
    Soft = "Soft"
    Mature = "Mature"
    X = "X"


class Listing(StrEnum):
    new = "new"
    hot = "hot"
    top = "top"
    rising = "rising"


class RedditPeriod(StrEnum):
    hour = "hour"
    day = "day"
    week = "week"
    month = "month"
    year = "year"
    all = "all"


MaxPages = Annotated[int | None, typer.Option(help="Stop after this many listing pages.")]
Since = Annotated[datetime | None, typer.Option(help="Stop at items older than this (ISO date).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print a machine-readable summary.")]


def _run(source_of: str, max_pages: int | None, since: datetime | None, as_json: bool, **options: Any) -> None:
    """Build the source named ``source_of`` in services/crawl.py and crawl it. Exit 1 when the crawl stopped on an
    error or any item failed."""
    from likeness.services import crawl

    factory: Callable[..., Source] = getattr(crawl, source_of)
    from likeness.services.scan import check_settings

    with session() as a:
        check_settings(a.settings)
        source = factory(a, **{k: v.value if isinstance(v, Enum) else v for k, v in options.items()})
        with output.crawl_progress(err, disabled=as_json) as progress:
            summary = crawl.crawl(a, source, actor="cli", max_pages=max_pages, since=since, progress=progress)
    if as_json:
        out.print_json(json.dumps(output.crawl_json(summary)))
    else:
        output.crawl_summary(out, summary)
    if summary.error or summary.scan.errors:
        raise typer.Exit(FAILED)


@crawl_app.command("civitai")
def civitai(
    models: Annotated[bool, typer.Option(help="Walk /models and their version images instead of /images.")] = False,
    sort: Annotated[str, typer.Option(help="Newest, Most Reactions, ...")] = "Newest",
    nsfw: Annotated[CivitaiNsfw | None, typer.Option(help="/images: the NSFW level.")] = None,
    period: Annotated[Period | None, typer.Option(help="The time period.")] = None,
    username: Annotated[str | None, typer.Option()] = None,
    tag: Annotated[str | None, typer.Option(help="/models: a model tag (see `likeness crawl civitai-tags`).")] = None,
    query: Annotated[str | None, typer.Option(help="/models: a search query.")] = None,
    max_pages: MaxPages = None,
    since: Since = None,
    as_json: AsJson = False,
) -> None:
    """CivitAI's public API; two-pass thumbnails (the original only for pictures with a face)."""
    if not models and (tag or query):
        usage("--tag and --query need --models (the /images listing has no such filters)")
    filters = {"tag": tag, "query": query, "nsfw": "true" if nsfw else None} if models else {"nsfw": nsfw}
    _run("civitai", max_pages, since, as_json, endpoint="models" if models else "images", sort=sort, period=period,
         username=username, **filters)  # fmt: skip


@crawl_app.command("civitai-tags")
def civitai_tags(query: Annotated[str, typer.Argument(help="Part of a tag name.")]) -> None:
    """CivitAI model tags matching a query, for `crawl civitai --models --tag`."""
    from likeness.services import crawl

    with session() as a:
        for name in crawl.civitai_tags(a, query):
            out.print(name)


@crawl_app.command("reddit")
def reddit(
    subreddit: Annotated[str, typer.Argument(help="A subreddit, or several joined with +.")],
    listing: Annotated[Listing, typer.Option(help="The listing.")] = Listing.new,
    period: Annotated[RedditPeriod | None, typer.Option(help="For top: the period.")] = None,
    max_pages: MaxPages = None,
    since: Since = None,
    as_json: AsJson = False,
) -> None:
    """Reddit listing JSON: images, galleries, hosted videos and link previews."""
    if period is not None and listing is not Listing.top:
        usage("--period applies to --listing top only")
    _run("reddit", max_pages, since, as_json, subreddit=subreddit, listing=listing, period=period)


@crawl_app.command("deviantart")
def deviantart(
    query: Annotated[str | None, typer.Option(help="RSS search expression (by:user, tags, max_age:24h ...).")] = None,
    tag: Annotated[str | None, typer.Option(help="A tag through the OAuth2 API (needs client credentials).")] = None,
    max_pages: MaxPages = None,
    since: Since = None,
    as_json: AsJson = False,
) -> None:
    """DeviantArt: RSS search, or the API by tag; analysed at crawl time (CDN tokens expire)."""
    if (query is None) == (tag is None):
        usage("give --query (RSS search) or --tag (API), one of them")
    _run("deviantart", max_pages, since, as_json, query=query, tag=tag)


@crawl_app.command("urls")
def urls(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="One URL a line: media, pages, sitemaps.")],
    max_pages: MaxPages = None,
    as_json: AsJson = False,
) -> None:
    """A list of URLs: pictures and videos as they are, pages for their pictures, sitemaps for their pages."""
    _run("url_list", max_pages, None, as_json, path=path)


@crawl_app.command("status")
def status(fmt: Annotated[Format, typer.Option("--format", help="table or json")] = Format.table) -> None:
    """Each source's checkpoint and last run."""
    from likeness.services import crawl

    with session() as a:
        output.crawl_status(out, crawl.status(a), fmt)
