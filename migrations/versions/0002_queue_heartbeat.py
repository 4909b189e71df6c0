"""Index images by queue priority; add a heartbeat time to jobs.

Revision ID: 0002_queue_heartbeat
Revises: 0001_initial
Create Date: 2026-11-28 00:46:02.393150

Both directions rebuild a parent table (``images`` up, ``jobs`` down) on purpose: that is
the batch operation that cascade-deletes child rows when SQLite foreign keys are on, and
the migration tests check that nothing is lost (env.py runs migrations with them off).
Only on SQLite: elsewhere (PostgreSQL) a rebuild would have to drop a primary key that other
tables' foreign keys use, and ALTER TABLE does these changes in place.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002_queue_heartbeat'
down_revision: str | Sequence[str] | None = '0001_initial'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild() -> str:
    """``always`` on SQLite (see above), ``auto`` (in place) on servers."""
    return 'always' if op.get_bind().dialect.name == 'sqlite' else 'auto'


def upgrade() -> None:
    with op.batch_alter_table('images', schema=None, recreate=_rebuild()) as batch_op:
        batch_op.create_index(batch_op.f('ix_images_priority'), ['priority'], unique=False)

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None, recreate=_rebuild()) as batch_op:
        batch_op.drop_column('updated_at')

    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_images_priority'))
