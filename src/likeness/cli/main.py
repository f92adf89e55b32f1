"""Typer app. Each command parses its arguments, calls one service function and formats the result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from likeness.cli import output
from likeness.cli.crawl import crawl_app
from likeness.cli.shell import err, out, session
from likeness.services import hashes, review, scan, subjects

app = typer.Typer(help="Find misuse of consenting people's faces and protected images.", no_args_is_help=True)
subjects_app = typer.Typer(help="Consenting people whose faces are protected.", no_args_is_help=True)
hashes_app = typer.Typer(help="Protected images, kept only as perceptual hashes.", no_args_is_help=True)
matches_app = typer.Typer(help="Review what the scanner found.", no_args_is_help=True)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
app.add_typer(subjects_app, name="subjects")
app.add_typer(hashes_app, name="hashes")
app.add_typer(matches_app, name="matches")
app.add_typer(db_app, name="db")
app.add_typer(crawl_app, name="crawl")


@app.command("scan")
def scan_cmd(
    targets: Annotated[list[str], typer.Argument(help="Files, folders (recursive) or http(s) URLs.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable summary.")] = False,
) -> None:
    """Analyse media, catalogue every face and match against the registry."""
    with session() as a, output.scan_progress(err, disabled=as_json) as progress:
        summary = scan.scan(a.store, a.settings, targets, progress)
    if as_json:
        out.print_json(json.dumps(summary.as_json()))
    else:
        output.scan_summary(out, summary)


@subjects_app.command("add")
def subjects_add(
    photos: Annotated[list[Path], typer.Argument(help="Reference photos, one face each.", exists=True)],
    name: Annotated[str, typer.Option("--name", help="The subject's name (stored encrypted).")],
    largest_face: Annotated[bool, typer.Option(help="Use the largest face when a photo has several.")] = False,
    allow_domain: Annotated[
        list[str] | None, typer.Option(help="A domain where this face is used with consent.")
    ] = None,
) -> None:
    """Enroll a consenting subject; the whole catalogue is searched for them at once."""
    with session() as a:
        result = subjects.enroll(a, name, photos, largest_face=largest_face, allowed_domains=allow_domain)
    out.print(
        f"subject {result.subject_id} enrolled from {result.references} photo(s); "
        f"{result.catalogue_matches} match(es) in the catalogue"
    )


@subjects_app.command("list")
def subjects_list(fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table") -> None:
    with session() as a:
        rows = subjects.list_subjects(a)
    output.subjects(out, rows, fmt)


@subjects_app.command("remove")
def subjects_remove(subject_id: int) -> None:
    """Withdraw a subject: their embeddings and matches are deleted everywhere."""
    with session() as a:
        counts = subjects.withdraw(a, subject_id)
    out.print(
        f"subject {subject_id} removed with {counts['references']} embedding(s) and {counts['matches']} match(es)"
    )


Bank = Annotated[str, typer.Option(help="The bank.")]
Submission = Annotated[str | None, typer.Option(help="Group these hashes so they can be withdrawn together.")]
ListFormat = Annotated[
    str,
    typer.Option(
        "--format", help="text (one PDQ hex per line), csv (hash,quality,id) or vpdq (frame,quality,hash,time: a video)"
    ),
]


@hashes_app.command("add")
def hashes_add(
    files: Annotated[list[Path], typer.Argument(help="Images to protect; only their PDQ hash is stored.", exists=True)],
    bank: Bank = "default",
    submission: Submission = None,
) -> None:
    with session() as a:
        results = hashes.add_files(a, bank, files, submission)
    output.hashes_added(out, results)
    if not any(r.hash_id for r in results):  # some flat frames of a video may be refused while others are kept
        raise typer.Exit(1)


@hashes_app.command("list")
def hashes_list() -> None:
    """The banks, their settings and how many hashes each holds."""
    with session() as a:
        output.banks(out, hashes.list_banks(a))


@hashes_app.command("bank")
def hashes_bank(
    name: str,
    enabled: Annotated[bool | None, typer.Option("--enable/--disable", help="Match against this bank or not.")] = None,
    negative: Annotated[
        bool | None, typer.Option("--negative/--positive", help="Negative: known false positives that veto a match.")
    ] = None,
    threshold: Annotated[int | None, typer.Option(help="This bank's PDQ distance (at most the global one).")] = None,
) -> None:
    """Create or change a bank."""
    with session() as a:
        info = hashes.configure_bank(a, name, enabled=enabled, negative=negative, max_distance=threshold)
    output.banks(out, [info])


@hashes_app.command("withdraw")
def hashes_withdraw(
    ids: Annotated[list[int] | None, typer.Argument(help="Hash ids.")] = None,
    submission: Annotated[str | None, typer.Option(help="Withdraw every hash of this submission.")] = None,
) -> None:
    """Withdraw protected hashes: they and their matches are deleted, and no index keeps them."""
    with session() as a:
        count = hashes.withdraw(a, ids, submission)
    out.print(f"{count} hash(es) withdrawn")


@hashes_app.command("import")
def hashes_import(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    bank: Bank = "default",
    fmt: ListFormat = "text",
    submission: Submission = None,
) -> None:
    """Import a hash list as HMA and ThreatExchange tools write them; a file with any bad line imports nothing."""
    with session() as a:
        new, present, found = hashes.import_list(a, bank, path, fmt, submission)
    out.print(f"{new} hash(es) imported into {bank}, {present} already there; {found} match(es) in the catalogue")


@hashes_app.command("export")
def hashes_export(bank: Bank = "default", fmt: ListFormat = "text", submission: Submission = None) -> None:
    with session() as a:
        typer.echo(hashes.export_list(a, bank, fmt, submission), nl=False)


@matches_app.command("list")
def matches_list(
    status: Annotated[str | None, typer.Option(help="new, confirmed or rejected")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    with session() as a:
        rows = review.list_matches(a, status)
    output.matches(out, rows, fmt)


@matches_app.command("media")
def matches_media(
    media_id: Annotated[int | None, typer.Argument(help="One media; all media with matches if left out.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """Per media: who and which banks it matched, in which frames, its NSFW score and vPDQ video verdicts."""
    with session() as a:
        output.media_summaries(out, review.media_summary(a, media_id), fmt)


@matches_app.command("confirm")
def matches_confirm(match_id: int) -> None:
    with session() as a:
        review.set_status(a, match_id, "confirmed")
    out.print(f"match {match_id} confirmed")


@matches_app.command("reject")
def matches_reject(match_id: int) -> None:
    with session() as a:
        review.set_status(a, match_id, "rejected")
    out.print(f"match {match_id} rejected")


@app.command("report")
def report_cmd(
    out_path: Annotated[Path, typer.Option("--out", help="The HTML file to write.")],
    status: Annotated[str | None, typer.Option(help="Only matches in this state.")] = None,
) -> None:
    """Write a self-contained HTML report of the matches."""
    with session() as a:
        count = review.write_report(a, out_path, status)
    out.print(f"report with {count} match(es) written to {out_path}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (also done automatically on start)."""
    with session() as a:
        from likeness.store.db import current_revision

        out.print(f"database at revision {current_revision(a.store.engine)}")


@app.command("demo")
def demo_cmd(
    workdir: Annotated[Path, typer.Option(help="Where the demo corpus, data and report go.")] = Path("demo-out"),
) -> None:
    """Enroll a sample subject, scan a generated corpus, print the matches and write a report."""
    from likeness.services import demo

    result = demo.run(workdir.resolve(), out.print)
    output.matches(out, result.matches, "table")
    out.print(
        f"subject copies found: {result.subject_found}/{result.subject_total}; false matches on other "
        f"people or no-face pictures: {len(result.false_matches)} {result.false_matches or ''}; reposts of "
        f"the protected image found: {result.reposts_found}"
    )
    out.print(f"5. report: {result.report}  ({result.elapsed_s:.0f}s in all)")
    if result.false_matches or result.subject_found < result.subject_total:
        raise typer.Exit(1)
