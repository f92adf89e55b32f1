"""Formatting for the terminal: Rich tables and progress, or JSON. Text that came from files, platforms or people
is escaped (a file named ``[red]x.jpg`` is shown, not interpreted); service types are imported for typing only."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

if TYPE_CHECKING:
    from likeness.cases.review import MatchRecord, MediaSummary, SightingRecord
    from likeness.catalogue.crawls import Checkpoint
    from likeness.errors import PossibleDuplicate
    from likeness.registry.hashes import BankInfo
    from likeness.registry.subjects import SubjectInfo
    from likeness.services.crawl import CrawlProgress, CrawlSummary
    from likeness.services.hashes import HashAdded
    from likeness.services.scan import Progress as ProgressFn
    from likeness.services.scan import ScanSummary
    from likeness.services.stats import Stats
    from likeness.services.subjects import Imported


@contextmanager
def scan_progress(console: Console, disabled: bool = False) -> Iterator[ProgressFn]:
    columns = (
        TextColumn("scanning"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.1f} files/s · {task.fields[errors]} errors"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=disabled, transient=False) as bar:
        task = bar.add_task("scan", total=None, rate=0.0, errors=0)

        def update(summary: ScanSummary, total: int) -> None:
            bar.update(task, completed=summary.files, total=total, rate=summary.files_per_s, errors=len(summary.errors))

        yield update


def scan_summary(console: Console, s: ScanSummary) -> None:
    console.print(
        f"{s.files} file(s) in {s.elapsed_s:.1f}s ({s.files_per_s:.1f}/s): {s.analyzed} analysed, "
        f"{s.already_known} already known, {s.duplicates_in_scan} duplicate(s), {s.near_duplicates} near-duplicate(s), "
        f"{s.prefiltered} pre-filtered, {s.not_media} not media, "
        f"{s.faces} face(s); new matches: {s.face_matches} face, {s.hash_matches} hash"
    )
    if s.errors:
        table = Table("file", "error", "message", title=f"{len(s.errors)} file(s) with errors")
        for e in s.errors:
            table.add_row(escape(e.location), e.kind, escape(e.message))
        console.print(table)


def scan_json(s: ScanSummary) -> dict[str, object]:
    return {**asdict(s), "files_per_s": round(s.files_per_s, 2), "elapsed_s": round(s.elapsed_s, 3)}


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def sighting_json(s: SightingRecord) -> dict[str, object]:
    times = {"posted_at": _time(s.posted_at), "first_seen": _time(s.first_seen), "last_seen": _time(s.last_seen)}
    return {"url": s.url, "page_url": s.page_url, "platform": s.platform, "author": s.author, **times}


def match_json(r: MatchRecord) -> dict[str, object]:
    found: dict[str, Any] = {
        "id": r.id,
        "kind": r.kind,
        "subject_id": r.subject_id,
        "subject" if r.kind == "face" else "bank": r.target,
        "location": r.location,
        "score": round(r.score, 4),
        "tier": r.tier,
        "status": r.status,
        "media_id": r.media_id,
        "sha256": r.sha256,
        "face_box": list(r.face_box) if r.face_box else None,
        "frame": r.frame,
        "nsfw": r.nsfw,
        "ai_generator": r.provenance.get("generator"),
        "created_at": r.created_at.isoformat(),
        "video": r.detail,
        "note": r.note,
        "sightings": [sighting_json(s) for s in r.sightings],
    }
    if r.kind == "hash":
        found |= {"hash_id": r.hash_id, "submission": r.submission}
    return found


def matches(console: Console, rows: Sequence[MatchRecord], fmt: str) -> None:
    if fmt == "json":
        console.print_json(json.dumps([match_json(r) for r in rows]))
        return
    table = Table("id", "kind", "who / bank", "score", "tier", "status", Column("where", overflow="fold"))
    for r in rows:
        score = f"{r.score:.3f}" if r.kind == "face" else f"d={int(r.score)}"
        where = escape(r.location) + (f" (+{len(r.sightings) - 1} more)" if len(r.sightings) > 1 else "")
        table.add_row(str(r.id), r.kind, escape(r.target), score, r.tier, r.status, where)
    console.print(table)


def match_detail(console: Console, r: MatchRecord, fmt: str) -> None:
    if fmt == "json":
        console.print_json(json.dumps(match_json(r)))
        return
    matches(console, [r], "table")
    if r.kind == "hash":
        console.print(f"protected hash {r.hash_id} in bank {escape(r.target)}"
                      + (f", submission {escape(r.submission)}" if r.submission else ""))  # fmt: skip
    if r.note:
        console.print(f"note: {escape(r.note)}")
    table = Table(Column("seen at", overflow="fold"), Column("page", overflow="fold"), "platform", "author", "posted",
                  "first seen", "last seen", title=f"media {r.media_id}: {len(r.sightings)} place(s)")  # fmt: skip
    for s in r.sightings:
        table.add_row(escape(s.url), escape(s.page_url or ""), escape(s.platform or ""), escape(s.author or ""),
                      _time(s.posted_at) or "", _time(s.first_seen), _time(s.last_seen))  # fmt: skip
    console.print(table)


def possible_duplicate(console: Console, exc: PossibleDuplicate, candidates: Sequence[SubjectInfo]) -> None:
    console.print(f"[yellow]warning:[/yellow] {escape(str(exc))}")
    for c in candidates:
        console.print(f"  subject {c.id}: {escape(c.name)} ({c.references} reference(s))")
    console.print("enroll again with --add-to ID (these photos join that subject) or --new (a new subject)")


def stats(console: Console, s: Stats, fmt: str) -> None:
    if fmt == "json":
        console.print_json(json.dumps(asdict(s)))
        return
    console.print(f"{s.media} media ({s.failed_media} failed), {s.sightings} sighting(s), {s.faces} face(s); "
                  f"{s.subjects} subject(s), {s.banks} bank(s) with {s.hashes} hash(es)")  # fmt: skip
    by_status = ", ".join(f"{n} {status}" for status, n in sorted(s.matches.items())) or "none"
    console.print(f"matches: {by_status}")


def media_summaries(console: Console, rows: Sequence[MediaSummary], fmt: str) -> None:
    if fmt == "json":
        console.print_json(json.dumps([r.__dict__ for r in rows]))
        return
    table = Table("media", "subjects", "banks", "frames", "nsfw", "video (vPDQ)", Column("where", overflow="fold"))
    for r in rows:
        videos = "; ".join(
            f"{v['submission']}: {v['query_percent']:.0f}%/{v['target_percent']:.0f}%"
            + (" match" if v["video_match"] else "")
            for v in r.video_matches
        )
        nsfw = f"{r.max_nsfw:.2f}" if r.max_nsfw is not None else "-"
        frames = ", ".join(map(str, r.frames))
        names, banks = escape(", ".join(r.subjects)), escape(", ".join(r.banks))
        table.add_row(str(r.media_id), names, banks, frames, nsfw, escape(videos), escape(r.location))
    console.print(table)


def subjects(console: Console, rows: Sequence[SubjectInfo], fmt: str, model: str) -> None:
    """``model``: the configured engine's; a subject enrolled with another must be enrolled again to be matched."""
    if fmt == "json":
        console.print_json(json.dumps([{**r.__dict__, "re_enroll": r.model != model} for r in rows]))
        return
    table = Table("id", "name", "references", "outliers", "matches", "allowed domains", "model")
    for r in rows:
        shown = r.model if r.model == model else f"[yellow]{escape(r.model)}: re-enroll[/yellow]"
        table.add_row(str(r.id), escape(r.name), str(r.references), str(r.outliers), str(r.matches),
                      escape(", ".join(r.allowed_domains)), shown)  # fmt: skip
    console.print(table)
    stale = sum(r.model != model for r in rows)
    if stale:
        console.print(f"[yellow]{stale} subject(s) were enrolled with another model than {escape(model)}: their "
                      "photos must be enrolled again before they can be matched[/yellow]")  # fmt: skip


def imported(console: Console, rows: Sequence[Imported], fmt: str) -> None:
    if fmt == "json":
        console.print_json(json.dumps([r.__dict__ for r in rows]))
        return
    for r in rows:
        if r.already_enrolled:
            console.print(f"{escape(r.name)}: already enrolled as subject {r.subject_id}; left as it is")
        elif r.subject_id is None:
            console.print(f"[red]{escape(r.name)}[/red]: not enrolled, no usable photo")
        else:
            console.print(f"{escape(r.name)}: subject {r.subject_id} from {r.references} photo(s); "
                          f"{r.catalogue_matches} match(es) in the catalogue")  # fmt: skip
        for reason in r.refused:
            console.print(f"  [yellow]left out:[/yellow] {escape(reason)}")


def hashes_added(console: Console, results: Sequence[HashAdded]) -> None:
    for r in results:
        if r.error:
            console.print(f"[red]{escape(r.file)}[/red]: {escape(r.error)}")
        else:
            state = "added" if r.created else "already protected"
            console.print(
                f"{escape(r.file)}: {state} (pdq {r.pdq_hex}, quality {r.quality}); "
                f"{r.catalogue_matches} match(es) in the catalogue"
            )


def banks(console: Console, rows: Sequence[BankInfo]) -> None:
    table = Table("bank", "hashes", "enabled", "kind", "threshold")
    for b in rows:
        kind = "negative" if b.negative else "protective"
        threshold = "global" if b.max_distance is None else str(b.max_distance)
        table.add_row(escape(b.bank), str(b.hashes), "yes" if b.enabled else "no", kind, threshold)
    console.print(table)


@contextmanager
def crawl_progress(console: Console, disabled: bool = False) -> Iterator[CrawlProgress]:
    columns = (
        TextColumn("crawling {task.fields[source]}"),
        TextColumn("page {task.fields[pages]} · {task.completed} items ({task.fields[rate]:.1f}/s)"),
        TextColumn("· {task.fields[mib]:.1f} MiB · {task.fields[errors]} errors"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=disabled, transient=False) as bar:
        task = bar.add_task("crawl", total=None, source="", pages=0, rate=0.0, mib=0.0, errors=0)

        def update(s: CrawlSummary) -> None:
            rate = s.listed / s.elapsed_s if s.elapsed_s else 0.0
            errors = len(s.scan.errors) + len(s.rejected)
            bar.update(task, completed=s.listed, source=s.source, pages=s.pages, rate=rate, mib=s.bytes / 2**20,
                       errors=errors)  # fmt: skip

        yield update


def crawl_json(s: CrawlSummary) -> dict[str, object]:
    return {**{k: v for k, v in s.__dict__.items() if k != "scan"}, "scan": scan_json(s.scan)}


def crawl_summary(console: Console, s: CrawlSummary) -> None:
    console.print(
        f"{s.source}: {s.pages} page(s), {s.listed} item(s) listed, {s.seen} seen before, {s.skipped} skipped, "
        f"{s.retried} retried; {s.requests} request(s), {s.bytes / 2**20:.1f} MiB in {s.elapsed_s:.1f}s; "
        f"stopped: {s.stopped or 'done'}"
    )
    scan_summary(console, s.scan)
    if s.scan.upgraded:
        console.print(f"{s.scan.upgraded} original(s) fetched after a face was seen in the thumbnail")
    for reason in s.rejected[:20]:
        console.print(f"[yellow]rejected:[/yellow] {escape(reason)}")
    if s.error:
        console.print(
            f"[red]stopped on an error:[/red] {escape(s.error)} (the next run resumes from the last whole page)"
        )


def crawl_status(console: Console, rows: Sequence[Checkpoint], fmt: str) -> None:
    if fmt == "json":
        console.print_json(json.dumps([r.__dict__ for r in rows], default=str))
        return
    table = Table("source", "backfill", "cursor", "pages", "items", "failed", "last run", "last error")
    for r in rows:
        last = r.last_run_at.isoformat(timespec="seconds") if r.last_run_at else "-"
        table.add_row(escape(r.source), "done" if r.backfilled else "in progress", escape(r.cursor or "-"),
                      str(r.pages), str(r.items), str(r.failed), last, escape(r.last_error or ""))  # fmt: skip
    console.print(table)
