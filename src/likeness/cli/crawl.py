"""``likeness crawl ...``: one command per platform, each building a source and calling the crawl service."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from likeness.cli import output
from likeness.cli.shell import err, out, session
from likeness.services import crawl
from likeness.sources.base import Source

crawl_app = typer.Typer(
    help="Crawl platforms, newest first; later runs pick up only what is new.", no_args_is_help=True
)

MaxPages = Annotated[int | None, typer.Option(help="Stop after this many listing pages.")]
Since = Annotated[datetime | None, typer.Option(help="Stop at items older than this (ISO date).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print a machine-readable summary.")]


def _run(
    source_of: Callable[..., Source], max_pages: int | None, since: datetime | None, as_json: bool, **options: object
) -> None:
    with session() as a, output.crawl_progress(err, disabled=as_json) as progress:
        source = source_of(a, **options)
        summary = crawl.crawl(a, source, max_pages=max_pages, since=since, progress=progress)
    if as_json:
        out.print_json(json.dumps(output.crawl_json(summary)))
    else:
        output.crawl_summary(out, summary)
    if summary.error:
        raise typer.Exit(1)


@crawl_app.command("civitai")
def civitai(
    models: Annotated[bool, typer.Option(help="Walk /models and their version images instead of /images.")] = False,
    sort: Annotated[str, typer.Option(help="Newest, Most Reactions, ...")] = "Newest",
    nsfw: Annotated[str | None, typer.Option(help="/images: None, Soft, Mature or X.")] = None,
    period: Annotated[str | None, typer.Option(help="AllTime, Year, Month, Week or Day.")] = None,
    username: Annotated[str | None, typer.Option()] = None,
    tag: Annotated[str | None, typer.Option(help="/models: a model tag (see `likeness crawl civitai-tags`).")] = None,
    query: Annotated[str | None, typer.Option(help="/models: a search query.")] = None,
    max_pages: MaxPages = None,
    since: Since = None,
    as_json: AsJson = False,
) -> None:
    """CivitAI's public API; two-pass thumbnails (the original only for pictures with a face)."""
    filters = {"tag": tag, "query": query, "nsfw": "true" if nsfw else None} if models else {"nsfw": nsfw}
    _run(crawl.civitai, max_pages, since, as_json, endpoint="models" if models else "images", sort=sort, period=period,
         username=username, **filters)  # fmt: skip


@crawl_app.command("civitai-tags")
def civitai_tags(query: Annotated[str, typer.Argument(help="Part of a tag name.")]) -> None:
    """CivitAI model tags matching a query, for `crawl civitai --models --tag`."""
    with session() as a:
        for name in crawl.civitai_tags(a, query):
            out.print(name)


@crawl_app.command("reddit")
def reddit(
    subreddit: Annotated[str, typer.Argument(help="A subreddit, or several joined with +.")],
    listing: Annotated[str, typer.Option(help="new, hot, top, rising.")] = "new",
    period: Annotated[str | None, typer.Option(help="For top: hour, day, week, month, year, all.")] = None,
    max_pages: MaxPages = None,
    since: Since = None,
    as_json: AsJson = False,
) -> None:
    """Reddit listing JSON: images, galleries, hosted videos and link previews."""
    _run(crawl.reddit, max_pages, since, as_json, subreddit=subreddit, listing=listing, period=period)


@crawl_app.command("deviantart")
def deviantart(
    query: Annotated[str | None, typer.Option(help="RSS search expression (by:user, tags, max_age:24h ...).")] = None,
    tag: Annotated[str | None, typer.Option(help="A tag through the OAuth2 API (needs client credentials).")] = None,
    max_pages: MaxPages = None,
    since: Since = None,
    as_json: AsJson = False,
) -> None:
    """DeviantArt: RSS search, or the API by tag; analysed at crawl time (CDN tokens expire)."""
    _run(crawl.deviantart, max_pages, since, as_json, query=query, tag=tag)


@crawl_app.command("urls")
def urls(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="One URL a line: media, pages, sitemaps.")],
    max_pages: MaxPages = None,
    as_json: AsJson = False,
) -> None:
    """A list of URLs: pictures and videos as they are, pages for their pictures, sitemaps for their pages."""
    _run(crawl.url_list, max_pages, None, as_json, path=path)


@crawl_app.command("status")
def status(fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table") -> None:
    """Each source's checkpoint and last run."""
    with session() as a:
        output.crawl_status(out, crawl.status(a), fmt)
