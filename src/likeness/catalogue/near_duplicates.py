"""Near-duplicate groups: the same picture resized or re-encoded is one group, under its first media.

Only the grouping is shared; every distinct file is still analysed in full, because a face swapped into a
picture changes too few PDQ bits to tell the two apart, and the swapped face is what we are looking for.
The index covers the canonical media of the groups and lives in the scanning process; two scans running at
once may each start a group for the same picture (then they stay two groups).
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from likeness.analyze import Analysis
from likeness.analyze.pdq_index import PdqIndex, as_words
from likeness.store.models import Media


class NearDuplicates:
    def __init__(self, max_distance: int, min_quality: int) -> None:
        self.max_distance = max_distance
        self.min_quality = min_quality
        self._index: PdqIndex | None = None

    def canonical_for(self, session: Session, analysis: Analysis) -> int | None:
        """The media whose group this analysis joins, or None when it starts a group (or has no usable PDQ)."""
        if not self._usable(analysis):
            return None
        assert analysis.pdq is not None
        hits = self._load(session).query(analysis.pdq, self.max_distance)
        return hits[0][0] if hits else None

    def started(self, media_id: int, analysis: Analysis) -> None:
        """Call after the commit that stored ``media_id`` as a group's canonical media."""
        if self._index is not None and self._usable(analysis):
            assert analysis.pdq is not None
            self._index.add(media_id, analysis.pdq)

    def _usable(self, analysis: Analysis) -> bool:
        return analysis.pdq is not None and (analysis.pdq_quality or 0) >= self.min_quality

    def _load(self, session: Session) -> PdqIndex:
        if self._index is None:
            rows = session.execute(
                select(Media.id, Media.pdq).where(
                    Media.canonical_id.is_(None), Media.pdq.is_not(None), Media.pdq_quality >= self.min_quality
                )
            ).all()
            self._index = PdqIndex(self.max_distance)
            self._index.build(np.array([r.id for r in rows], np.int64), as_words([r.pdq for r in rows if r.pdq]))
        return self._index
