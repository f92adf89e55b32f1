"""Alerts: new matches told to the people who must act, and honeypots that prove the pipeline still finds things.

New matches are queued here, in the transaction that creates them (``notify_new_matches``, called by
match/records.py): one ``alert_deliveries`` row per (rule, match), unique, so however often a match is found again
it is told once. Sending is apart from queueing (``deliver.send_due``): by a worker task (``alerts.tasks``), at the
end of ``likeness scan`` or by ``likeness alerts send``; a crash between a send and its record sends that one again,
which receivers tell apart by its delivery id. What is sent never carries the found picture: ids, tier, kind and,
where a rule asks for them, the URLs it was found at.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from likeness.settings import Settings

# Tiers in rising order (match/policy.py's TIERS, best first): a rule takes its tier and those above it.
TIER_RANK = {"low": 0, "medium": 1, "high": 2}

_RANK_SQL = "CASE {col} WHEN 'high' THEN 2 WHEN 'medium' THEN 1 ELSE 0 END"
# One statement whatever the number of rules (none: nothing happens, at the cost of this one query). Honeypot
# subjects' matches are canaries, never alerts; a subject-facing rule takes only its subject's matches.
_QUEUE = text(
    f"""
    INSERT INTO alert_deliveries (rule_id, match_id, event)
    SELECT r.id, m.id, 'match' FROM matches m JOIN alert_rules r
      ON {_RANK_SQL.format(col="m.tier")} >= {_RANK_SQL.format(col="r.min_tier")}
     AND (r.subject_id IS NULL OR r.subject_id = m.subject_id)
    WHERE m.id = ANY(:ids)
      AND NOT EXISTS (SELECT 1 FROM honeypots h WHERE h.subject_id = m.subject_id)
    ON CONFLICT DO NOTHING
    """
)


def notify_new_matches(session: Session, match_ids: list[int], settings: Settings | None, *, actor: str) -> int:
    """Queue a notification of each new match to each rule it concerns, in the caller's transaction; idempotent
    per (rule, match). Returns how many were queued. ``actor`` caused the matches (kept for the interface: the
    queue rows themselves are not audited, the matches are)."""
    del actor
    if not match_ids or (settings is not None and not settings.alerts.enabled):
        return 0
    result = session.execute(_QUEUE, {"ids": list(match_ids)})
    return int(getattr(result, "rowcount", 0) or 0)


__all__ = ["TIER_RANK", "notify_new_matches"]
