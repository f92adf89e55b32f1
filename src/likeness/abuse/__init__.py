"""Abuse controls shared by every API process: all state lives in PostgreSQL, none in the process.

- ``admit``: the IP blocklist, account bans, enumeration throttles and token buckets (per token and per IP, their
  rate following the caller's trust score), once per authenticated request.
- ``rejected``: a refused input lowers trust.
- ``observe_upload``: the same picture from several accounts within an hour is a coordinated attack, flagged.
- ``observe_probe`` (``observe_probes`` for a batch): many distinct faces or hashes probed in a window is
  enumeration, flagged and throttled.
- ``shadow_hold``: a shadow-banned caller's submission, kept for review and never processed.
Every decision goes to the append-only ``abuse_log``; ``operators`` holds what ``likeness abuse`` does.

Call ``admit`` (and the others) in a transaction the API commits even when they raise: a refusal's penalty and
log row must persist.
"""

from likeness.abuse.caller import Admission, Caller
from likeness.abuse.detect import observe_probe, observe_probes, observe_upload
from likeness.abuse.gate import admit, rejected, shadow_hold

__all__ = [
    "Admission",
    "Caller",
    "admit",
    "observe_probe",
    "observe_probes",
    "observe_upload",
    "rejected",
    "shadow_hold",
]
