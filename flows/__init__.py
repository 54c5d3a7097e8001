"""cryptoarena flows (not part of the installed package)."""
