"""Crypto-shredding, read as a forensic examiner would: after a withdrawal, nothing of the person can be found
anywhere under LIKENESS_HOME (the embedded server's WAL, heap and TOAST files, the keyring, the checkpoint), in
clear or after decrypting everything the master key, stored beside the data, can open. A control run before the
withdrawal, and a second person who stays, show that the same search does find what is there.

Also here: keys that a rollback or a crash leaves behind, a withdrawal cut short by a crash, the master key's
settings, reports' file mode, and the one-time re-sealing of a database written before migration 0008.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from alembic.config import Config
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import create_engine, text

import likeness.store.db as db
from likeness.cases import report
from likeness.errors import ConfigurationError
from likeness.registry import subjects as subject_registry
from likeness.services import audit as audit_service
from likeness.services import hashes, review, scan, subjects
from likeness.services.app import App, open_app
from likeness.settings import ScanSettings, Settings
from likeness.store import keys
from likeness.store.crypto import FileKeyring
from tests import images
from tests.images import photos

NAME = "Zebulon Quixote-Marchetti"
LABEL = "ncii case Wilhelmina-Xyzzy-4711"
DOMAIN = "zebulon-quixote.example"
CONTROL_NAME = "Gracielle Control-Hopper"
CONTROL_LABEL = "control case Quokka-0042"

# -- the examiner ----------------------------------------------------------------------------------------------

_RUN = re.compile(rb"[A-Za-z0-9_\-=]{4,}")  # url-safe base64: Fernet tokens, whole or in pieces
_START = b"gAAAAA"  # a Fernet token's version byte and the high bytes of its timestamp
_MAX_PIECES = 12  # a value TOASTed into ~2 KB chunks, some cut again by a WAL page header, follows in the WAL
_MAX_TRAILING = 12  # base64-looking bytes right after a token (the next field's header)


@dataclass
class Findings:
    raw: dict[str, set[str]] = field(default_factory=dict)  # needle -> files holding it in clear
    decrypted: dict[str, set[str]] = field(default_factory=dict)  # needle -> files holding a token that reveals it
    keys: int = 0  # data keys recovered with the master key

    def anywhere(self, needle: str) -> set[str]:
        return self.raw.get(needle, set()) | self.decrypted.get(needle, set())


def _segments(data: bytes) -> Iterator[tuple[bytes, list[bytes]]]:
    """Each stretch of base64 that starts like a Fernet token, with the runs that follow it in the file."""
    runs = [m.group() for m in _RUN.finditer(data)]
    for i, run in enumerate(runs):
        starts = [m.start() for m in re.finditer(re.escape(_START), run)]
        for n, start in enumerate(starts):
            end = starts[n + 1] if n + 1 < len(starts) else len(run)
            yield run[start:end], runs[i + 1 : i + 1 + _MAX_PIECES] if end == len(run) else []


def _open(keyring: list[Fernet], head: bytes, pieces: list[bytes]) -> bytes | None:
    """Decrypt the token starting at ``head``: whole, trimmed of trailing bytes, or joined with the pieces after it."""
    candidate = head
    for piece in [b"", *pieces]:
        candidate += piece
        for cut in range(_MAX_TRAILING + 1):
            token = candidate[: len(candidate) - cut]
            if not _plausible(token):
                continue
            for fernet in keyring:
                try:
                    return fernet.decrypt(token)
                except (InvalidToken, ValueError):
                    pass
    return None


def _plausible(token: bytes) -> bool:
    """Whether ``token`` has a Fernet token's length: 57 bytes around a ciphertext of whole 16-byte blocks."""
    padding = len(token) - len(token.rstrip(b"="))
    return len(token) % 4 == 0 and padding <= 2 and (len(token) // 4 * 3 - padding - 57) % 16 == 0


def examine(home: Path, master: bytes, needles: dict[str, list[bytes]]) -> Findings:
    """Every file under ``home``: needles in clear, then in every token that the master key or a data key it
    unwraps can open (repeated until no new key turns up)."""
    files = {str(p.relative_to(home)): p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file()}
    segments = [(name, head, pieces) for name, data in files.items() for head, pieces in _segments(data)]
    keyring, plaintexts, seen = [Fernet(master)], {}, {master}
    while True:
        for name, head, pieces in segments:
            if (name, head) not in plaintexts and (plain := _open(keyring, head, pieces)) is not None:
                plaintexts[name, head] = plain
        new = {p for p in plaintexts.values() if _is_key(p)} - seen
        if not new:
            break
        seen |= new
        keyring += [Fernet(k) for k in new]
    findings = Findings(keys=len(seen) - 1)
    for label, forms in needles.items():
        findings.raw[label] = {name for name, data in files.items() if any(f in data for f in forms)}
        findings.decrypted[label] = {name for (name, _), plain in plaintexts.items() if any(f in plain for f in forms)}
    return findings


def _is_key(plain: bytes) -> bool:
    try:
        Fernet(plain)
    except (ValueError, TypeError):
        return False
    return len(plain) == 44


def _text_forms(value: str) -> list[bytes]:
    return [value.encode("utf-8"), value.encode("utf-16-le"), value.encode("utf-16-be")]


def _windows(blob: bytes, size: int, step: int) -> list[bytes]:
    """Pieces of ``blob``: one of them lies whole in any ~2 KB chunk PostgreSQL would cut it into."""
    return [blob[i : i + size] for i in range(0, max(len(blob) - size, 0) + 1, step)]


def _checkpoint(app: App) -> None:
    """Make everything PostgreSQL wrote reach the files (the WAL is on disk at each commit; heap pages now)."""
    with app.store.engine.connect() as conn:
        conn.execute(text("CHECKPOINT"))
        conn.commit()


# -- the end-to-end test ---------------------------------------------------------------------------------------


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[App]:
    """No database URL: the embedded server lives in the temporary home, so its files can be read."""
    instance = open_app(Settings(home=tmp_path / "home", scan=ScanSettings(workers=1)))
    yield instance
    instance.close()


def _work(app: App, folder: Path) -> tuple[int, int]:
    """Two subjects and two submissions; a scan that matches both kinds; a review; a report; an export."""
    ref = images.write(folder / "refs" / "zebulon.jpg", images.astronaut_face_crop())
    control_ref = images.write(folder / "refs" / "grace.jpg", images.grace_hopper())
    subject_id = subjects.enroll(app, NAME, photos([ref]), allowed_domains=[DOMAIN], actor="test").subject_id
    control_id = subjects.enroll(app, CONTROL_NAME, photos([control_ref]), actor="test").subject_id
    assert subject_id != control_id
    hashes.add_files(
        app,
        "ncii",
        photos([images.write(folder / "refs" / "p.jpg", images.NO_FACE["chelsea"]())]),
        submission=LABEL,
        actor="test",
    )
    hashes.add_files(
        app,
        "ncii",
        photos([images.write(folder / "refs" / "q.jpg", images.NO_FACE["rocket"]())]),
        submission=CONTROL_LABEL,
        actor="test",
    )
    images.write(folder / "scan" / "astronaut.jpg", images.resize(images.astronaut(), 0.9))
    images.write(folder / "scan" / "repost.jpg", images.resize(images.NO_FACE["chelsea"](), 0.8), quality=70)
    summary = scan.scan(app, [str(folder / "scan")], actor="test")
    assert summary.face_matches >= 1 and summary.hash_matches == 1
    found = review.list_matches(app, limit=None)
    assert {r.target for r in found} >= {NAME, "ncii"}
    review.set_status(app, found[0].id, "confirmed", actor="test")
    review.write_report(app, folder / "report.html")
    audit_service.export_file(app, folder / "audit.jsonl", decrypt=True)
    return subject_id, control_id


def _needles(app: App, subject_id: int, control_id: int) -> dict[str, list[bytes]]:
    engine = app.face_engine()
    with app.store.transaction() as session:
        crop = subject_registry.reference_crop(session, app.store.box, subject_id)
        vectors, _ = subject_registry.probe_vectors(session, engine.model)
    assert crop is not None and crop.startswith(b"\xff\xd8")
    embeddings = [np.asarray(v, "<f4").tobytes() for owner, v in vectors if owner == subject_id]
    assert embeddings and any(owner == control_id for owner, _ in vectors)
    return {
        "name": _text_forms(NAME),
        "label": _text_forms(LABEL),
        "domain": _text_forms(DOMAIN),
        "crop": _windows(crop[crop.index(b"\xff\xda") + 16 :], 64, 512),  # its scan data: not the tables, shared
        "embedding": [w for e in embeddings for w in _windows(e, 32, 96)],
        "control name": _text_forms(CONTROL_NAME),
        "control label": _text_forms(CONTROL_LABEL),
    }


def test_after_withdrawal_nothing_of_the_person_is_readable_under_the_home(embedded: App, tmp_path: Path) -> None:
    app, home = embedded, embedded.settings.home
    subject_id, control_id = _work(app, tmp_path / "work")
    needles = _needles(app, subject_id, control_id)
    master = (home / "secret.key").read_bytes().strip()  # the worst case: the master key beside the data
    _checkpoint(app)
    before = examine(home, master, needles)
    for needle in needles:  # the control: the search finds each of them, and only ever sealed
        assert before.decrypted[needle], f"the search does not find the {needle} even before withdrawal"
        assert before.raw[needle] == set(), f"the {needle} is stored in clear: {before.raw[needle]}"
    assert any(name.startswith("pg/pg_wal/") for name in before.decrypted["crop"])  # TOASTed, and found

    subjects.withdraw(app, subject_id, actor="test")
    hashes.withdraw(app, actor="test", submission=LABEL)
    _checkpoint(app)
    after = examine(home, master, needles)
    for needle in ("name", "label", "domain", "crop", "embedding"):
        assert after.anywhere(needle) == set(), f"the withdrawn {needle} is still readable in {after.anywhere(needle)}"
    assert after.decrypted["control name"] and after.decrypted["control label"]  # the same search, still seeing
    assert after.keys == before.keys - 2 == 2
    assert sorted(p.suffix for p in (home / "keyring").iterdir()) == [".key", ".key"]
    assert audit_service.verify(app).intact
    assert stat.S_IMODE((tmp_path / "work" / "report.html").stat().st_mode) == 0o600


# -- keys over their lifetime ----------------------------------------------------------------------------------


def _key_files(app: App) -> list[str]:
    folder = app.settings.home / "keyring"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_a_rolled_back_transaction_shreds_the_keys_it_made(app: App) -> None:
    with pytest.raises(RuntimeError), app.store.transaction() as session:
        key = app.store.box.new_key(session)
        assert _key_files(app) == [f"{key.id}.pending"]
        raise RuntimeError("enrollment failed")
    assert _key_files(app) == []


def test_committed_keys_are_promoted_and_orphans_swept(app: App, tmp_path: Path) -> None:
    picture = images.write(tmp_path / "p.jpg", images.NO_FACE["chelsea"]())
    hashes.add_files(app, "ncii", photos([picture]), submission="kept", actor="test")
    [kept] = _key_files(app)
    assert kept.endswith(".key")
    orphan, _ = app.store.box.keys.create()  # a process died before its transaction committed
    crashed, _ = app.store.box.keys.create()  # one died between its commit and the hook
    with app.store.engine.begin() as conn:
        conn.execute(text("UPDATE submissions SET key_id = :k"), {"k": crashed})
    with app.store.transaction() as session:
        assert keys.sweep_orphans(session, older_than_s=3600) == 0  # too young to judge
        assert keys.sweep_orphans(session, older_than_s=0) == 1
    assert _key_files(app) == sorted([kept, f"{crashed}.key"])
    assert app.store.box.key(orphan) is None


def test_a_withdrawal_cut_short_is_finished_at_the_next_start(settings: Settings, tmp_path: Path) -> None:
    picture = images.write(tmp_path / "p.jpg", images.NO_FACE["chelsea"]())
    with open_app(settings) as app:
        hashes.add_files(app, "ncii", photos([picture]), submission="to go", actor="test")
        with app.store.transaction() as session:  # step 1 only: the process dies before the key is shredded
            from likeness.registry import hashes as hash_registry

            hash_registry.withdraw(session, submission="to go", actor="test")
        assert len(_key_files(app)) == 1
        assert hashes.export_list(app, "ncii", "text") == ""
    with open_app(settings) as app:
        assert _key_files(app) == []
        with app.store.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM submissions")).scalar_one() == 0


def test_a_missing_key_hides_the_owner_but_deletes_nothing(app: App, tmp_path: Path) -> None:
    picture = images.write(tmp_path / "p.jpg", images.NO_FACE["chelsea"]())
    hashes.add_files(app, "ncii", photos([picture]), submission="lost key", actor="test")
    for name in _key_files(app):
        (app.settings.home / "keyring" / name).unlink()  # a wrong LIKENESS_KEYRING, say
    with app.store.transaction() as session:
        keys.erase_withdrawn(session)
        from likeness.registry import hashes as hash_registry

        assert hash_registry.submission_for(session, "lost key") is None
    with app.store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM submissions")).scalar_one() == 1


# -- the master key --------------------------------------------------------------------------------------------


def test_a_malformed_master_key_is_a_configuration_error(settings: Settings) -> None:
    with pytest.raises(ConfigurationError, match="LIKENESS_SECRET_KEY is not a Fernet key"):
        open_app(settings.model_copy(update={"secret_key": "not-a-key"}))


def test_the_master_key_can_live_outside_the_home(settings: Settings, tmp_path: Path) -> None:
    key_file = tmp_path / "elsewhere" / "master.key"
    with pytest.raises(ConfigurationError, match="no file"):
        open_app(settings.model_copy(update={"key_file": key_file}))
    key_file.parent.mkdir()
    key_file.write_bytes(Fernet.generate_key())
    apart = settings.model_copy(update={"key_file": key_file})
    picture = images.write(tmp_path / "p.jpg", images.NO_FACE["chelsea"]())
    with open_app(apart) as app:
        hashes.add_files(app, "ncii", photos([picture]), submission="apart", actor="test")
    assert not (settings.home / "secret.key").exists()
    with pytest.raises(ConfigurationError, match="does not open key"):
        open_app(settings)  # a new key in the home would not open the keyring
    key_file.write_bytes(b"garbage\n")
    with pytest.raises(ConfigurationError, match=r"LIKENESS_KEY_FILE \(.*\) is not a Fernet key"):
        open_app(apart)


def test_key_ids_from_the_database_never_name_other_files(tmp_path: Path) -> None:
    keyring = FileKeyring(tmp_path / "keyring", Fernet(Fernet.generate_key()))
    (tmp_path / "victim.key").write_bytes(b"precious")
    with pytest.raises(ConfigurationError, match="malformed key id"):
        keyring.shred("../victim")
    assert (tmp_path / "victim.key").read_bytes() == b"precious"


def test_reports_are_created_readable_by_their_owner_only(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        report.write(tmp_path / "r.html", "<p>names and faces</p>")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.html").stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]


# -- a database from before 0008 -------------------------------------------------------------------------------


def _alembic(conn: object) -> Config:
    folder = Path(db.__file__).with_name("migrations")
    config = Config(str(folder / "alembic.ini"))
    config.set_main_option("script_location", str(folder))
    config.attributes["connection"] = conn
    return config


_LEGACY_SQL = {
    "subject": "INSERT INTO subjects (name_enc, allowed_domains, engine, model, centroid) "
    "VALUES (:n, :d, 'e', 'm', :v)",
    "reference": "INSERT INTO subject_references (subject_id, embedding, quality, is_outlier, crop_enc) "
    "VALUES (1, :v, 0.9, false, :c)",
    "hash": "INSERT INTO protected_hashes (bank, algorithm, digest, quality, submission) "
    "VALUES ('ncii', 'pdq/1.0', '\\x01', 90, 'Legacy Label Marguerite')",
    "audit": "INSERT INTO audit_log (actor, action, entity, entity_id, details, prev_hash, hash) "
    "VALUES ('cli', :a, :e, :i, CAST(:d AS jsonb), :p, :h)",
}
_LEGACY_AUDIT = [
    ("subject.enrolled", "subject", 1, {"references": 1, "allowed_domains": ["ottoline.example"]}),
    ("hash.added", "hash", 1, {"bank": "ncii", "submission": "Legacy Label Marguerite"}),
    ("hash.withdrawn", "hash", 7, {"bank": "ncii", "submission": "Long Gone Submission"}),
]


def _legacy_database(pg: object, master: bytes) -> str:
    """A database at 0007 as that code wrote it: names and crops sealed with the master key, the label and the
    allowed domains in clear, the audit log chained by plain SHA-256."""
    pg.psql("CREATE DATABASE legacy_0007;")  # type: ignore[attr-defined]
    url: str = db._with_driver(pg.get_uri("legacy_0007"))  # type: ignore[attr-defined]
    engine = create_engine(url)
    vector = "[" + ",".join(["0.0883883"] * 128) + "]"
    fernet = Fernet(master)
    with engine.begin() as conn:
        command.upgrade(_alembic(conn), "0007")
        name, crop = fernet.encrypt(b"Ottoline Legacy"), fernet.encrypt(b"\xff\xd8legacy crop")
        conn.execute(text(_LEGACY_SQL["subject"]), {"n": name, "d": ["ottoline.example"], "v": vector})
        conn.execute(text(_LEGACY_SQL["reference"]), {"v": vector, "c": crop})
        conn.execute(text("INSERT INTO banks (name) VALUES ('ncii')"))
        conn.execute(text(_LEGACY_SQL["hash"]))
        prev = "0" * 64
        for action, entity, entity_id, details in _LEGACY_AUDIT:
            body = {"actor": "cli", "action": action, "entity": entity, "entity_id": entity_id, "details": details}
            digest = hashlib.sha256((prev + json.dumps(body, sort_keys=True, default=str)).encode()).hexdigest()
            values = {"a": action, "e": entity, "i": entity_id, "d": json.dumps(details), "p": prev, "h": digest}
            conn.execute(text(_LEGACY_SQL["audit"]), values)
            prev = digest
    engine.dispose()
    return url


def test_a_database_from_before_0008_is_resealed_once_at_start(pg: object, tmp_path: Path) -> None:
    master = Fernet.generate_key()
    url = _legacy_database(pg, master)
    settings = Settings(home=tmp_path / "home", database_url=url, secret_key=master.decode())
    with open_app(settings) as app:
        [listed] = subjects.list_subjects(app)
        assert (listed.name, listed.allowed_domains) == ("Ottoline Legacy", ["ottoline.example"])
        with app.store.transaction() as session:
            vectors, domains = subject_registry.probe_vectors(session, "m")
            assert subject_registry.reference_crop(session, app.store.box, 1) == b"\xff\xd8legacy crop"
        assert len(vectors) == 2 and domains == {1: ["ottoline.example"]}
        assert np.allclose(vectors[0][1], 0.0883883)
        verdict = audit_service.verify(app)
        assert verdict.intact and verdict.rows == 4
        lines: list[str] = []
        audit_service.export(app, lines.append, decrypt=True)
    rows = [json.loads(line) for line in lines]
    assert rows[0]["personal"] == {"allowed_domains": ["ottoline.example"]}
    assert rows[1]["personal"] == {"submission_label": "Legacy Label Marguerite"}
    assert rows[2]["details"] == {"bank": "ncii", "submission": None, "redacted": ["submission"]}
    assert rows[3]["action"] == "audit.adopted" and rows[3]["details"]["legacy_chain"] == "intact"
    engine = create_engine(url)
    with engine.connect() as conn:
        stored = " ".join(str(r) for t in ("subjects", "subject_references", "protected_hashes", "submissions",
                                           "audit_log") for r in conn.execute(text(f"SELECT * FROM {t}")))  # fmt: skip
        assert conn.execute(text("SELECT count(*) FROM subjects WHERE centroid IS NOT NULL")).scalar_one() == 0
    engine.dispose()
    for clear in ("ottoline", "Marguerite", "Long Gone", "0.0883883"):
        assert clear not in stored
    with open_app(settings) as app:  # the second start finds nothing left to convert
        assert audit_service.verify(app).rows == 4
        assert hashes.withdraw(app, actor="test", submission="Legacy Label Marguerite") == 1
