"""What we have seen: media by SHA-256, where each was seen, and every face in it."""
