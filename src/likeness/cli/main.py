"""Typer app. Each command parses its arguments, calls one service function and formats the result.

Services are imported inside the commands (see cli/shell.py): the command line starts in a fraction of a second.
Exit codes are in cli/shell.py and the README.
"""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from likeness.cli import output
from likeness.cli.abuse import abuse_app
from likeness.cli.admin import serve, tokens_app, users_app
from likeness.cli.alerts import alerts_app, honeypot_app
from likeness.cli.audit import audit_app
from likeness.cli.cases import cases_app
from likeness.cli.crawl import crawl_app
from likeness.cli.reports import reports_app
from likeness.cli.schedule import schedule_app
from likeness.cli.shell import FAILED, USAGE, Format, err, out, session, typer_app, usage
from likeness.cli.worker import jobs_app, worker

if TYPE_CHECKING:
    from likeness.services.app import App
    from likeness.services.subjects import Photo

ACTOR = "cli"  # who the audit log says did what was asked on this command line

app = typer_app("Find misuse of consenting people's faces and protected images.")
subjects_app = typer_app("Consenting people whose faces are protected.")
hashes_app = typer_app("Protected images, kept only as perceptual hashes.")
matches_app = typer_app("Review what the scanner found.")
db_app = typer_app("The database.")
app.add_typer(subjects_app, name="subjects")
app.add_typer(hashes_app, name="hashes")
app.add_typer(matches_app, name="matches")
app.add_typer(db_app, name="db")
app.add_typer(crawl_app, name="crawl")
app.add_typer(audit_app, name="audit")
app.add_typer(abuse_app, name="abuse")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(alerts_app, name="alerts")
app.add_typer(honeypot_app, name="honeypot")
app.add_typer(schedule_app, name="schedule")
app.add_typer(reports_app, name="reports")
app.add_typer(cases_app, name="cases")  # EVIDENCE: cases list|show|capture|export|verify (+ takedown)
app.command("serve")(serve)
app.add_typer(jobs_app, name="jobs")
app.command("worker")(worker)

FormatOption = Annotated[Format, typer.Option("--format", help="table or json")]


class Status(StrEnum):
    new = "new"
    on_hold = "on_hold"
    released = "released"
    confirmed = "confirmed"
    rejected = "rejected"
    false_positive = "false_positive"
    actioned = "actioned"
    removed = "removed"
    still_up = "still_up"


class ListFormat(StrEnum):
    text = "text"
    csv = "csv"
    vpdq = "vpdq"


@app.command("scan")
def scan_cmd(
    targets: Annotated[list[str], typer.Argument(help="Files, folders (recursive) or http(s) URLs.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable summary.")] = False,
    queue: Annotated[bool, typer.Option("--queue", help="Queue one job per file for `likeness worker`.")] = False,
) -> None:
    """Analyse media, catalogue every face and match against the registry. Exit 1 when any file failed."""
    missing = [t for t in targets if not t.startswith(("http://", "https://")) and "://" not in t]
    missing = [t for t in missing if not os.path.lexists(os.path.expanduser(t))]
    if missing:
        usage(f"no such file or folder: {missing[0]}")
    if queue:
        return _defer_scan(targets, as_json)
    from likeness.services import scan

    with session() as a:
        scan.check_settings(a.settings)
        _warn_stale_subjects(a)
        with output.scan_progress(err, disabled=as_json) as progress:
            summary = scan.scan(a, targets, actor=ACTOR, progress=progress)
        from likeness.alerts import deliver

        deliver.send_due(a.store, a.settings)  # new matches told now; failures are kept and retried
    if as_json:
        out.print_json(json.dumps(output.scan_json(summary)))
    else:
        output.scan_summary(out, summary)
    if summary.errors:
        raise typer.Exit(FAILED)


def _defer_scan(targets: list[str], as_json: bool) -> None:
    """Queued, not run: the files are read by the workers; a target that cannot be queued exits 1."""
    from likeness.worker.tasks import defer_scan

    with session() as a:
        queued = defer_scan(a, targets, actor=ACTOR)
    if as_json:
        out.print_json(json.dumps({"queued": len(queued.job_ids), "not_media": queued.not_media,
                                   "refused": [{"location": w, "error": e} for w, e in queued.refused]}))  # fmt: skip
    else:
        out.print(f"{len(queued.job_ids)} file(s) queued for `likeness worker`")
        for where, why in queued.refused:
            err.print(f"[red]not queued:[/red] {escape(where)}: {escape(why)}")
    if queued.refused:
        raise typer.Exit(FAILED)


def _warn_stale_subjects(a: App) -> None:
    from likeness.services import subjects

    stale = [s.id for s in subjects.list_subjects(a) if s.model != a.settings.faces.model]
    if stale:
        err.print(f"[yellow]warning:[/yellow] subject(s) {', '.join(map(str, stale))} were enrolled with another "
                  f"face model than {a.settings.faces.model} and are not matched: enroll them again")  # fmt: skip


@subjects_app.command("add")
def subjects_add(
    photos: Annotated[list[Path], typer.Argument(help="Reference photos, one face each.", exists=True, dir_okay=False)],
    name: Annotated[str, typer.Option("--name", help="The subject's name (stored encrypted).")],
    largest_face: Annotated[bool, typer.Option(help="Use the largest face when a photo has several.")] = False,
    allow_domain: Annotated[
        list[str] | None, typer.Option(help="A domain where this face is used with consent.")
    ] = None,
    add_to: Annotated[
        int | None, typer.Option("--add-to", help="Add these photos to this enrolled subject instead.")
    ] = None,
    new: Annotated[
        bool, typer.Option("--new", help="Enroll a new subject even if the name or face is enrolled already.")
    ] = False,
) -> None:
    """Enroll a consenting subject; the whole catalogue is searched for them at once. Someone who may be enrolled
    already (the same name, or the same face) is not enrolled twice: choose --add-to ID or --new (exit 2)."""
    from likeness.errors import PossibleDuplicate
    from likeness.services import subjects

    with session() as a:
        try:
            result = subjects.enroll(a, name, _photos(photos), actor=ACTOR, largest_face=largest_face,
                                     allowed_domains=allow_domain, add_to=add_to, force_new=new)  # fmt: skip
        except PossibleDuplicate as exc:
            output.possible_duplicate(err, exc, subjects.list_subjects(a, only=set(exc.candidates)))
            raise typer.Exit(USAGE) from exc
    done = f"added to subject {result.subject_id}" if result.added_to_existing else f"subject {result.subject_id}"
    out.print(f"{done} enrolled from {result.references} photo(s); {result.catalogue_matches} match(es) in the "
              "catalogue")  # fmt: skip


def _photos(paths: list[Path]) -> list[Photo]:
    from likeness.services.subjects import Photo

    return [Photo(str(path), path.read_bytes()) for path in paths]


@subjects_app.command("import")
def subjects_import(
    folder: Annotated[Path, typer.Argument(help="One sub-folder per person, named after them.", file_okay=False)],
    largest_face: Annotated[bool, typer.Option(help="Use the largest face when a photo has several.")] = False,
    fmt: FormatOption = Format.table,
) -> None:
    """Enroll many people at once; people already enrolled under their folder's name are left as they are.
    Exit 1 when a person had no usable photo."""
    from likeness.services import subjects

    with session() as a:
        results = subjects.import_folder(a, folder, actor=ACTOR, largest_face=largest_face)
    output.imported(out, results, fmt)
    if any(r.subject_id is None for r in results):
        raise typer.Exit(FAILED)


@subjects_app.command("list")
def subjects_list(fmt: FormatOption = Format.table) -> None:
    from likeness.services import subjects

    with session() as a:
        rows = subjects.list_subjects(a)
    output.subjects(out, rows, fmt, a.settings.faces.model)


@subjects_app.command("remove")
def subjects_remove(subject_id: int) -> None:
    """Withdraw a subject: their embeddings and matches are deleted everywhere."""
    from likeness.services import subjects

    with session() as a:
        counts = subjects.withdraw(a, subject_id, actor=ACTOR)
    out.print(
        f"subject {subject_id} removed with {counts['references']} embedding(s) and {counts['matches']} match(es)"
    )


@subjects_app.command("domains")
def subjects_domains(
    subject_id: int,
    allow_domain: Annotated[
        list[str] | None, typer.Option(help="A domain where this face is used with consent (all of them).")
    ] = None,
) -> None:
    """Replace the domains where a subject's face is used with consent (none given: none). Media seen only on a
    domain taken away are searched for the subject again."""
    from likeness.services import subjects

    with session() as a:
        info = subjects.set_allowed_domains(a, subject_id, allow_domain or [], actor=ACTOR)
    output.subjects(out, [info], "table", a.settings.faces.model)


Bank = Annotated[str, typer.Option(help="The bank (it must exist, or be the default, unless --create-bank).")]
CreateBank = Annotated[bool, typer.Option("--create-bank", help="Create the bank if it does not exist.")]
Submission = Annotated[str | None, typer.Option(help="Group these hashes so they can be withdrawn together.")]
ListFormatOption = Annotated[
    ListFormat,
    typer.Option(
        "--format", help="text (one PDQ hex per line), csv (hash,quality,id) or vpdq (frame,quality,hash,time: a video)"
    ),
]


@hashes_app.command("add")
def hashes_add(
    files: Annotated[
        list[Path],
        typer.Argument(help="Images to protect; only their PDQ hash is stored.", exists=True, dir_okay=False),
    ],
    bank: Bank = "default",
    create_bank: CreateBank = False,
    submission: Submission = None,
) -> None:
    """Protect pictures and videos by their hash. Exit 1 when a file could not be protected."""
    from likeness.services import hashes

    with session() as a:
        _require_bank(a, bank, create_bank)
        results = hashes.add_files(a, bank, _photos(files), actor=ACTOR, submission=submission)
    output.hashes_added(out, results)
    if not any(r.hash_id for r in results) or any(r.hash_id is None and r.pdq_hex is None for r in results):
        raise typer.Exit(FAILED)  # a file that could not be read or hashed (flat frames of a video are not errors)


def _require_bank(a: App, bank: str, create: bool) -> None:
    from likeness.errors import NotFound
    from likeness.services import hashes

    try:
        hashes.require_bank(a, bank, create, actor=ACTOR)
    except NotFound as exc:
        usage(f"{exc}: create it with --create-bank, or with `likeness hashes bank {bank}`")


@hashes_app.command("list")
def hashes_list() -> None:
    """The banks, their settings and how many hashes each holds."""
    from likeness.services import hashes

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
    from likeness.services import hashes

    with session() as a:
        info = hashes.configure_bank(a, name, actor=ACTOR, enabled=enabled, negative=negative, max_distance=threshold)
    output.banks(out, [info])


@hashes_app.command("withdraw")
def hashes_withdraw(
    ids: Annotated[list[int] | None, typer.Argument(help="Hash ids.")] = None,
    submission: Annotated[str | None, typer.Option(help="Withdraw every hash of this submission.")] = None,
) -> None:
    """Withdraw protected hashes (by id, or a whole submission): they and their matches are deleted everywhere."""
    if bool(ids) == (submission is not None):
        usage("give hash ids or --submission, not both" if ids else "give hash ids or --submission")
    from likeness.services import hashes

    with session() as a:
        count = hashes.withdraw(a, actor=ACTOR, hash_ids=ids, submission=submission)
    out.print(f"{count} hash(es) withdrawn")


@hashes_app.command("import")
def hashes_import(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    bank: Bank = "default",
    create_bank: CreateBank = False,
    fmt: ListFormatOption = ListFormat.text,
    submission: Submission = None,
) -> None:
    """Import a hash list as HMA and ThreatExchange tools write them; a file with any bad line imports nothing."""
    from likeness.errors import InvalidInput
    from likeness.services import hashes

    with session() as a:
        _require_bank(a, bank, create_bank)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"{path}: {exc}") from exc
        new, present, found = hashes.import_list(
            a, bank, text, fmt.value, actor=ACTOR, name=path.name, submission=submission
        )
    out.print(f"{new} hash(es) imported into {bank}, {present} already there; {found} match(es) in the catalogue")


@hashes_app.command("export")
def hashes_export(
    bank: Annotated[str, typer.Option(help="The bank.")] = "default",
    fmt: ListFormatOption = ListFormat.text,
    submission: Submission = None,
) -> None:
    from likeness.services import hashes

    with session() as a:
        typer.echo(hashes.export_list(a, bank, fmt.value, submission), nl=False)


class Kind(StrEnum):
    face = "face"
    hash = "hash"


@matches_app.command("list")
def matches_list(
    status: Annotated[Status | None, typer.Option(help="Only matches in this state.")] = None,
    kind: Annotated[Kind | None, typer.Option(help="Only face or hash matches.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many (all if left out).")] = None,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many first.")] = 0,
    fmt: FormatOption = Format.table,
) -> None:
    """Matches, oldest first, each with every place its media was seen (JSON: URL, page, platform, author,
    posted and first/last seen)."""
    from likeness.services import review

    with session() as a:
        rows = review.list_matches(a, status=status.value if status else None, kind=kind.value if kind else None,
                                   limit=limit, offset=offset)  # fmt: skip
    output.matches(out, rows, fmt)


@matches_app.command("show")
def matches_show(match_id: int, fmt: FormatOption = Format.table) -> None:
    """One match: who or which protected hash, and every place its media was seen."""
    from likeness.services import review

    with session() as a:
        output.match_detail(out, review.get_match(a, match_id), fmt)


@matches_app.command("media")
def matches_media(
    media_id: Annotated[int | None, typer.Argument(help="One media; all media with matches if left out.")] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Per media: who and which banks it matched, in which frames, its NSFW score and vPDQ video verdicts."""
    from likeness.services import review

    with session() as a:
        output.media_summaries(out, review.media_summary(a, media_id), fmt)


Note = Annotated[str | None, typer.Option(help="A note on the decision (stored encrypted).")]


@matches_app.command("confirm")
def matches_confirm(match_id: int, note: Note = None) -> None:
    _set_status(match_id, "confirmed", note)


@matches_app.command("reject")
def matches_reject(match_id: int, note: Note = None) -> None:
    _set_status(match_id, "rejected", note)


@matches_app.command("review")
def matches_review(
    match_id: int, status: Annotated[Status, typer.Argument(help="The next state.")], note: Note = None
) -> None:
    """Move a match along the review states (a move they do not have is refused, naming the allowed ones)."""
    _set_status(match_id, status.value, note)


def _set_status(match_id: int, status: str, note: str | None) -> None:
    from likeness.services import review

    with session() as a:
        review.set_status(a, match_id, status, actor=ACTOR, note=note)
    out.print(f"match {match_id} {status}")


@app.command("stats")
def stats_cmd(fmt: FormatOption = Format.table) -> None:
    """What the catalogue, registry and review queue hold."""
    from likeness.services import stats

    with session() as a:
        output.stats(out, stats.stats(a), fmt)


@app.command("report")
def report_cmd(
    out_path: Annotated[Path, typer.Option("--out", help="The HTML file to write (its folder must exist).")],
    status: Annotated[Status | None, typer.Option(help="Only matches in this state.")] = None,
) -> None:
    """Write a self-contained HTML report of the matches (readable by you only)."""
    if not out_path.parent.is_dir():
        usage(f"{out_path.parent}: no such folder for the report")
    if out_path.is_dir():
        usage(f"{out_path}: is a folder; give the report's file name")
    from likeness.services import review

    with session() as a:
        count = review.write_report(a, out_path, status.value if status else None)
    out.print(f"report with {count} match(es) written to {out_path}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (also done automatically on start)."""
    from likeness.store.db import current_revision

    with session() as a:
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
        raise typer.Exit(FAILED)
