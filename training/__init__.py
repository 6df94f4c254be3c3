"""Offline tooling: model export and training scripts (not imported at runtime)."""
