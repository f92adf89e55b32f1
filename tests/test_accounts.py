"""Accounts and tokens against the real store: tokens kept only as digests, scopes bounded by the role, every
change audited, and every way a token stops working."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text, update

from likeness import accounts
from likeness.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from likeness.services.app import App
from likeness.store.models import Account, ApiToken, AuditEvent


def _audited(app: App, action: str) -> int:
    with app.store.transaction() as s:
        return int(s.scalar(select(func.count()).where(AuditEvent.action == action)) or 0)


def test_a_token_works_until_revoked_and_only_its_digest_is_kept(app: App) -> None:
    with app.store.transaction() as s:
        user = accounts.create_user(s, "rev", "reviewer", actor="cli")
        new = accounts.create_token(s, user.id, actor="cli", scopes=["stats"], label="ci")
    assert new.token.startswith("lk_") and len(new.token) > 40
    with app.store.transaction() as s:
        stored = s.scalars(select(ApiToken)).one()
        assert stored.digest != new.token.encode() and len(stored.digest) == 32
        principal = accounts.authenticate_token(s, new.token)
    assert principal.scopes == {"stats"} and principal.role == "reviewer" and principal.actor == f"token:{new.info.id}"
    with app.store.transaction() as s:
        assert s.scalars(select(ApiToken)).one().last_used_at is not None
        accounts.revoke_token(s, new.info.id, actor="cli")
    with app.store.transaction() as s, pytest.raises(Unauthenticated):
        accounts.authenticate_token(s, new.token)
    assert _audited(app, "account.created") == 1
    assert _audited(app, "token.created") == 1
    assert _audited(app, "token.revoked") == 1


def test_expired_unknown_and_disabled_tokens_are_refused_alike(app: App) -> None:
    with app.store.transaction() as s:
        user = accounts.create_user(s, "a", "admin", actor="cli")
        expired = accounts.create_token(s, user.id, actor="cli", days=1)
        live = accounts.create_token(s, user.id, actor="cli")
        s.execute(
            update(ApiToken).where(ApiToken.id == expired.info.id).values(expires_at=text("now() - interval '1 s'"))
        )
    for raw in (expired.token, "lk_" + "x" * 43, "not-a-token", live.token[:-1]):
        with app.store.transaction() as s, pytest.raises(Unauthenticated, match="invalid token"):
            accounts.authenticate_token(s, raw)
    with app.store.transaction() as s:
        accounts.authenticate_token(s, live.token)
        accounts.disable_user(s, user.id, actor="cli")
    with app.store.transaction() as s, pytest.raises(Unauthenticated):
        accounts.authenticate_token(s, live.token)
    with app.store.transaction() as s:
        assert all(t.revoked_at is not None for t in s.scalars(select(ApiToken)))
    assert _audited(app, "account.disabled") == 1


def test_scopes_are_bounded_by_the_role_and_narrowed_when_it_changes(app: App) -> None:
    with app.store.transaction() as s:
        user = accounts.create_user(s, "r", "reviewer", actor="cli")
        with pytest.raises(InvalidInput, match="cannot hold"):
            accounts.create_token(s, user.id, actor="cli", scopes=["subjects:enroll"])
        with pytest.raises(InvalidInput, match="unknown scope"):
            accounts.create_token(s, user.id, actor="cli", scopes=["everything"])
        new = accounts.create_token(s, user.id, actor="cli")
    assert "subjects:enroll" not in new.info.scopes and "matches:review" in new.info.scopes
    with app.store.transaction() as s:  # an operator demotes the account by hand: old tokens lose the scopes
        s.execute(update(Account).values(role="subject", subject_id=None))
    with app.store.transaction() as s:  # a subject account with no subject yet: it waits to enroll, sees nothing
        demoted = accounts.authenticate_token(s, new.token)
    assert demoted.scopes == frozenset(new.info.scopes) & accounts.ROLE_SCOPES["subject"]
    assert demoted.visible_subjects() == set()


def test_accounts_need_a_valid_name_role_and_binding(app: App) -> None:
    with app.store.transaction() as s:
        with pytest.raises(InvalidInput):
            accounts.create_user(s, "bad name", "admin", actor="cli")
        with pytest.raises(InvalidInput, match="unknown role"):
            accounts.create_user(s, "x", "root", actor="cli")
        waiting = accounts.create_user(s, "waits", "subject", actor="cli")  # to enroll itself (the web portal)
        assert waiting.subject_id is None
        with pytest.raises(NotFound):
            accounts.create_user(s, "x", "subject", subject_id=999, actor="cli")
        with pytest.raises(InvalidInput, match="only a subject"):
            accounts.create_user(s, "x", "admin", subject_id=1, actor="cli")
        accounts.create_user(s, "x", "admin", actor="cli")
    with app.store.transaction() as s, pytest.raises(Conflict):
        accounts.create_user(s, "x", "reviewer", actor="cli")


def test_passwords_are_argon2id_hashes_and_a_wrong_one_says_nothing_more(app: App) -> None:
    with app.store.transaction() as s:
        with pytest.raises(InvalidInput, match="at least"):
            accounts.create_user(s, "short", "admin", actor="cli", password="abc")
        user = accounts.create_user(s, "p", "admin", actor="cli", password="correct horse battery")
    with app.store.transaction() as s:
        stored = s.scalars(select(Account.password_hash)).one()
        assert stored is not None and stored.startswith("$argon2id$") and "correct" not in stored
        assert accounts.verify_password(s, "p", "correct horse battery").id == user.id
    for name, password in (("p", "wrong horse battery"), ("nobody", "correct horse battery")):
        with app.store.transaction() as s, pytest.raises(Unauthenticated, match="wrong username or password"):
            accounts.verify_password(s, name, password)


def test_the_cli_adds_users_and_prints_a_token_once(app: App, cli_env: dict[str, str]) -> None:
    import subprocess
    import sys

    def likeness(*args: str) -> subprocess.CompletedProcess[str]:
        code = "import sys; from likeness.cli.main import app; sys.exit(app())"
        return subprocess.run([sys.executable, "-c", code, *args], env=cli_env, capture_output=True, text=True)

    assert likeness("users", "add", "ops", "--role", "admin").returncode == 0
    made = likeness("tokens", "create", "ops", "--scope", "stats", "--days", "7")
    assert made.returncode == 0, made.stderr
    raw = made.stdout.strip()
    with app.store.transaction() as s:
        assert accounts.authenticate_token(s, raw).scopes == {"stats"}
    listed = likeness("tokens", "list")
    assert listed.returncode == 0 and raw not in listed.stdout and "stats" in listed.stdout
    assert likeness("tokens", "revoke", "1").returncode == 0
    assert likeness("users", "disable", "nobody").returncode == 2
    with app.store.transaction() as s, pytest.raises(Unauthenticated):
        accounts.authenticate_token(s, raw)


def test_a_token_label_is_stored_clean(app: App) -> None:
    """Schemathesis found it: a label with a NUL made PostgreSQL refuse the row (a 500)."""
    with app.store.transaction() as s:
        user = accounts.create_user(s, "labels", "reviewer", actor="cli")
        made = accounts.create_token(s, user.id, actor="cli", scopes=["stats"], label="\x00laptop\x07")
    with app.store.transaction() as s:
        assert s.scalar(select(ApiToken.label).where(ApiToken.id == made.info.id)) == "laptop"
