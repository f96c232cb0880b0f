"""Small helpers that are no part of any model (kept free of heavy imports)."""
