"""The dashboard: a read-only FastAPI app over the journal, a live event stream, the kill switch,
and the built web UI (web/ → src/dashboard/static). See docs/dashboard.md."""
