"""Forecast serving: the FastAPI model server and the client the worker uses."""
