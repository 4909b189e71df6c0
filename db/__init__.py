"""Persistence: SQLAlchemy models, sessions, repository functions, import/export. No torch, no web."""
