"""NCII case reports: a number and PIN let the victim check or withdraw a case; wrong PINs are counted and then
refused; withdrawal leaves nothing personal readable anywhere under LIKENESS_HOME (searched as tests/test_privacy.py
searches for a withdrawn subject, master key in hand), while a second case stays readable by the same search."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from likeness.cases import ncii
from likeness.cli.main import app as cli
from likeness.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from likeness.services import cases, hashes
from likeness.services.app import App
from likeness.store import keys
from likeness.store.models import AuditEvent, NciiCase
from tests import images
from tests.images import photos
from tests.test_privacy import _checkpoint, _text_forms, embedded, examine

__all__ = ["embedded"]
DESCRIPTION = "my ex posted the Marigold-Thistlewood pictures"
EMAIL = "ottilie.frobisher-9@example.org"
CONTROL = "a stranger's report Peregrine-Quince-77"
NUMBER = re.compile(r"[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}")


def _report(app: App, description: str = DESCRIPTION, email: str = EMAIL, **extra: object) -> cases.NewCase:
    return cases.report(
        app,
        kind="intimate_image",
        description=description,
        contact={"email": email},
        urls=["https://civitai.example/images/123"],
        platforms=["CivitAI", "reddit"],
        actor="test",
        **extra,  # type: ignore[arg-type]
    )


def test_number_and_pin_open_the_case_and_nothing_else_does(app: App) -> None:
    made = _report(app)
    assert NUMBER.fullmatch(made.number) and re.fullmatch(r"\d{8}", made.pin)
    typed = made.number.lower().replace("-", " ").replace("0", "o").replace("1", "l")  # read back over the phone
    found = cases.status(app, typed, made.pin)
    assert (found.number, found.status, found.kind, found.platforms) == (
        made.number, "open", "intimate_image", ["civitai", "reddit"]
    )  # fmt: skip
    wrong = "0" * 8 if made.pin != "0" * 8 else "1" * 8
    with pytest.raises(Unauthenticated) as bad_pin:
        cases.status(app, made.number, wrong)
    with pytest.raises(Unauthenticated) as no_case:
        cases.status(app, "ZZZZZ-ZZZZZ" if made.number != "ZZZZZ-ZZZZZ" else "YYYYY-YYYYY", made.pin)
    assert str(bad_pin.value) == str(no_case.value)  # an unknown number reads as a wrong PIN
    with pytest.raises(InvalidInput):
        cases.status(app, "12345", made.pin)
    with app.store.transaction() as session:
        case = session.scalar(select(NciiCase).where(NciiCase.number == made.number))
        assert case is not None and case.pin_failures == 1 and made.pin not in (case.pin_hash or "")
        case.pin_failures = ncii.PIN_ATTEMPTS - 1
    with pytest.raises(Unauthenticated):
        cases.status(app, made.number, wrong)
    with pytest.raises(Forbidden):  # locked: the right PIN too
        cases.status(app, made.number, made.pin)


def test_an_operator_reads_the_sealed_details_and_links_are_checked(app: App, tmp_path: Path) -> None:
    picture = images.write(tmp_path / "p.jpg", images.NO_FACE["chelsea"]())
    [added] = hashes.add_files(app, "ncii", photos([picture]), submission="case 7", actor="test")
    assert added.hash_id is not None
    made = _report(app, hash_ids=[added.hash_id], submission="case 7")
    shown = cases.details(app, made.number)
    assert (shown.description, shown.contact, shown.hash_ids) == (DESCRIPTION, {"email": EMAIL}, [added.hash_id])
    assert shown.submission is not None and shown.urls == ["https://civitai.example/images/123"]
    with pytest.raises(NotFound):
        _report(app, hash_ids=[added.hash_id + 1000])
    with pytest.raises(NotFound):
        _report(app, submission="no such submission")
    with pytest.raises(InvalidInput):
        cases.report(app, kind="gossip", description="x", actor="test")
    with app.store.transaction() as session:
        stored = session.scalars(select(NciiCase.details_enc)).all()
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "ncii.reported")).all()
        assert len(events) == 1 and events[0].entity_id == shown.id and events[0].actor == "test"
    assert all(EMAIL.encode() not in (b or b"") for b in stored)


def test_after_withdrawal_nothing_of_the_case_is_readable_under_the_home(embedded: App) -> None:
    app, home = embedded, embedded.settings.home
    made, control = _report(app), _report(app, description=CONTROL, email="control@example.org")
    needles = {"description": _text_forms(DESCRIPTION), "email": _text_forms(EMAIL), "control": _text_forms(CONTROL)}
    master = (home / "secret.key").read_bytes().strip()  # the worst case: the master key beside the data
    _checkpoint(app)
    before = examine(home, master, needles)
    for needle in needles:  # the control: the same search finds each of them, sealed only
        assert before.decrypted[needle] and before.raw[needle] == set(), needle

    gone = cases.withdraw(app, made.number, made.pin, actor="victim")
    assert gone.status == "withdrawn" and gone.withdrawn_at is not None
    _checkpoint(app)
    after = examine(home, master, needles)
    assert after.anywhere("description") == set() and after.anywhere("email") == set()
    assert after.decrypted["control"]
    assert after.keys == before.keys - 1
    assert cases.status(app, made.number, made.pin).status == "withdrawn"  # the victim can still see it is done
    assert cases.details(app, made.number).description is None
    assert cases.withdraw(app, made.number, made.pin, actor="victim").status == "withdrawn"  # again: no change
    with app.store.transaction() as session:
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("ncii.%"))).all()
    assert sorted(actions) == ["ncii.reported", "ncii.reported", "ncii.withdrawn"]
    assert cases.details(app, control.number).description == CONTROL


def test_a_withdrawal_cut_short_is_finished_at_the_next_start(app: App) -> None:
    made = _report(app)
    with app.store.transaction() as session:  # the process dies after step 1: the key is still there
        case = ncii.authenticate(session, made.number, made.pin)
        assert case is not None and ncii.withdraw(session, case, actor="victim")
        key_id = case.key_id
    assert app.store.box.key(key_id) is not None
    keys.start(app.store)
    assert app.store.box.key(key_id) is None
    with app.store.engine.connect() as conn:
        row = conn.execute(text("SELECT key_id, details_enc FROM ncii_cases")).one()
    assert tuple(row) == (None, None)


def test_cli_add_status_withdraw(cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in cli_env.items():
        monkeypatch.setenv(key, value)
    from likeness.settings import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    args = ["--kind", "deepfake", "--description", DESCRIPTION, "--url", "https://x.example/1"]
    added = runner.invoke(cli, ["reports", "add", *args, "--platform", "reddit", "--contact", f"email={EMAIL}"])
    assert added.exit_code == 0, added.output
    number = NUMBER.search(added.output)
    pin = re.search(r"PIN (\d{8})", added.output)
    assert number and pin
    status = runner.invoke(cli, ["reports", "status", number[0]], input=f"{pin[1]}\n")
    assert status.exit_code == 0 and "open" in status.output and pin[1] not in status.output.split("PIN")[-1]
    wrong = runner.invoke(cli, ["reports", "status", number[0]], input="00000000\n" if pin[1] != "00000000" else "1\n")
    assert wrong.exit_code != 0 and "no case with that number and PIN" in wrong.output
    gone = runner.invoke(cli, ["reports", "withdraw", number[0], "--format", "json"], input=f"{pin[1]}\n")
    assert gone.exit_code == 0 and '"withdrawn"' in gone.output
    bad = runner.invoke(cli, ["reports", "add", "--kind", "deepfake", "--description", "x", "--contact", "nope"])
    assert bad.exit_code != 0 and "how=value" in bad.output
    get_settings.cache_clear()
