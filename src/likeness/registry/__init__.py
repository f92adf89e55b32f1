"""What we protect: consenting subjects (face embeddings) and protected-image hashes."""
