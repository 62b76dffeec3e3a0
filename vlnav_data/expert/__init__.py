"""expert."""
