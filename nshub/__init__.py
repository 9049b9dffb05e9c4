"""nshub client."""
