"""Fakes that speak real wire formats, so tests exercise the real clients (pybit, httpx…)."""
