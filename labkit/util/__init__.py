"""Small helpers any layer may use (standard library only; ``progress`` draws with tqdm, imported when drawing)."""
