"""Re-ranking of a short list: exact re-scoring (EMD), later query expansion and verification."""
