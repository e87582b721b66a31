"""Alembic environment for the civicscore schema: run by `open_store`, or by the CLI via alembic.ini."""
