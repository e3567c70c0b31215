"""Small helpers any layer may use (standard library only)."""
