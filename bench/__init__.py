"""cryptoarena bench (not part of the installed package)."""
