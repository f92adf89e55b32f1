"""What people do with a match: review, report (evidence and takedown come later)."""
