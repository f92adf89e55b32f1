"""The caller's own account and tokens: who am I, list, create (with a password or a token), revoke."""

from __future__ import annotations

from fastapi import APIRouter

from likeness import accounts
from likeness.api import schemas
from likeness.api.deps import Id, Minting, PrincipalDep, SessionDep, Tokens

router = APIRouter(tags=["accounts"])


@router.get("/me", response_model=schemas.Me)
def me(principal: PrincipalDep) -> schemas.Me:
    """The account and token this request acts as, and what it may do."""
    return schemas.Me(
        account_id=principal.account_id,
        token_id=principal.token_id,
        role=principal.role,
        scopes=sorted(principal.scopes),
        subject_id=principal.subject_id,
    )


@router.get("/tokens", response_model=schemas.Tokens)
def list_tokens(principal: Tokens, session: SessionDep) -> schemas.Tokens:
    found = accounts.list_tokens(session, principal.account_id)
    return schemas.Tokens(tokens=[schemas.Token.model_validate(t) for t in found])


@router.post("/tokens", response_model=schemas.NewToken, status_code=201)
def create_token(body: schemas.TokenIn, principal: Minting, session: SessionDep) -> schemas.NewToken:
    """A new token of the caller's account, shown once. Created with a token, it holds at most that token's
    scopes; with a password (HTTP Basic), at most the role's."""
    asked = body.scopes if body.scopes is not None else sorted(principal.scopes)
    beyond = sorted(set(asked) - principal.scopes)
    if beyond and principal.token_id is not None:
        asked = [s for s in asked if s in principal.scopes]  # never more than the token that makes it
    new = accounts.create_token(
        session, principal.account_id, actor=principal.actor, label=body.label, scopes=asked, days=body.days
    )
    return schemas.NewToken(token=new.token, info=schemas.Token.model_validate(new.info))


@router.delete("/tokens/{token_id}", response_model=schemas.Token)
def revoke_token(token_id: Id, principal: Tokens, session: SessionDep) -> schemas.Token:
    """Revoke one of the caller's tokens (an admin: anyone's)."""
    own = None if principal.role == "admin" else principal.account_id
    return schemas.Token.model_validate(accounts.revoke_token(session, token_id, actor=principal.actor, account_id=own))
