"""Keys, secrets, limits and output checks: what makes docchat safe on a shared network."""
