"""pytest fixtures that start the real lab parts (filled by the backends work)."""
