"""Protected hashes: look PDQ hashes up (HMA's lookup), protect by hash (the picture never leaves the client),
read and withdraw one."""

from __future__ import annotations

from fastapi import APIRouter, Request

from likeness.api import schemas
from likeness.api.deps import AppDep, HashesRead, HashesWrite, Id, shadowed
from likeness.api.uploads import hold, judged, probed
from likeness.services import hashes

router = APIRouter(prefix="/hashes", tags=["hashes"])


@router.post("/lookup", response_model=schemas.Lookup)
def lookup(body: schemas.LookupIn, request: Request, app: AppDep, principal: HashesRead) -> schemas.Lookup:
    """Each PDQ hash against the enabled banks, nearest first; a negative-bank hit means no hit."""
    probed(request, app, "hash", [bytes.fromhex(h) for h in body.hashes])
    found = judged(request, app, lambda: hashes.lookup(app, body.hashes))
    return schemas.Lookup(
        results=[
            schemas.LookupResult(pdq=pdq.lower(), matches=[schemas.LookupHit.model_validate(h) for h in hits])
            for pdq, hits in zip(body.hashes, found, strict=True)
        ]
    )


@router.post("", response_model=schemas.Protected, status_code=201)
def protect(body: schemas.ProtectIn, request: Request, app: AppDep, principal: HashesWrite) -> schemas.Protected:
    """Protect hashes the client computed; each is searched against the catalogue at once."""
    entries = [hashes.HashIn(h.pdq, h.quality) for h in body.hashes]
    if shadowed(request):
        hold(request, app, "protect", {"bank": body.bank, "hashes": [h.pdq for h in body.hashes]})
        held = [
            schemas.HashAdded(hash_id=None, pdq_hex=h.pdq, quality=h.quality, created=True, catalogue_matches=0)
            for h in body.hashes
        ]
        return schemas.Protected(added=held)
    hashes.require_bank(app, body.bank, actor=principal.actor)  # NotFound: banks are made by operators
    added = judged(
        request,
        app,
        lambda: hashes.add_hashes(app, body.bank, entries, actor=principal.actor, submission=body.submission),
    )
    return schemas.Protected(added=[schemas.HashAdded.model_validate(a) for a in added])


@router.get("/{hash_id}", response_model=schemas.HashInfo)
def get_hash(hash_id: Id, app: AppDep, principal: HashesRead) -> schemas.HashInfo:
    return schemas.HashInfo.model_validate(hashes.get_hash(app, hash_id))


@router.delete("/{hash_id}", response_model=schemas.Withdrawn)
def withdraw_hash(hash_id: Id, app: AppDep, principal: HashesWrite) -> schemas.Withdrawn:
    hashes.get_hash(app, hash_id)  # NotFound
    count = hashes.withdraw(app, actor=principal.actor, hash_ids=[hash_id])
    return schemas.Withdrawn(withdrawn={"hashes": count})
