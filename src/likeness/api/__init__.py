"""The HTTP API (FastAPI): ``create_app`` in api/app.py; ``likeness serve`` runs it on uvicorn."""
