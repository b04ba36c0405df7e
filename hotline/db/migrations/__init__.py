"""Alembic migration scripts (``env.py``, ``versions/``), run by ``hotline.db.migrate``."""
