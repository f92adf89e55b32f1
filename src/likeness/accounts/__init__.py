"""API accounts (admin, reviewer, subject), argon2 password hashes and scoped bearer tokens (stored as digests).

Functions take the session of the caller's transaction, so an account change and its audit record commit
together."""

from likeness.accounts.scopes import ROLE_SCOPES, ROLES, SCOPES, granted
from likeness.accounts.tokens import (
    NewToken,
    Principal,
    TokenInfo,
    authenticate_token,
    create_token,
    list_tokens,
    principal_of,
    revoke_token,
)
from likeness.accounts.users import (
    AccountInfo,
    bind_subject,
    create_user,
    disable_user,
    enrolled_self,
    find_user,
    get_user,
    list_users,
    verify_password,
)

__all__ = [
    "ROLES",
    "ROLE_SCOPES",
    "SCOPES",
    "AccountInfo",
    "NewToken",
    "Principal",
    "TokenInfo",
    "authenticate_token",
    "bind_subject",
    "create_token",
    "create_user",
    "disable_user",
    "enrolled_self",
    "find_user",
    "get_user",
    "granted",
    "list_tokens",
    "list_users",
    "principal_of",
    "revoke_token",
    "verify_password",
]
