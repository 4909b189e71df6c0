"""Record image deletions; never reuse an image id.

Revision ID: 0003_deletions
Revises: 0002_queue_heartbeat
Create Date: 2026-12-01 00:00:00.000000

``deletions`` says which image was deleted, by whom, when, why and how much went with it —
never its file name or content hash (faces are personal data). On SQLite ``images`` is rebuilt
with ``AUTOINCREMENT`` so that a deleted image's id is never given to a new image (the rebuild
runs with foreign keys off, see env.py, so no child row is lost); downgrade rebuilds it without.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003_deletions'
down_revision: str | Sequence[str] | None = '0002_queue_heartbeat'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _sqlite() -> bool:
    return op.get_bind().dialect.name == 'sqlite'


def upgrade() -> None:
    op.create_table('deletions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('deleted_by_id', sa.Integer(), nullable=True),
    sa.Column('deleted_at', sa.DateTime(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('revisions', sa.Integer(), nullable=False),
    sa.Column('predictions', sa.Integer(), nullable=False),
    sa.Column('sam_embeddings', sa.Integer(), nullable=False),
    sa.Column('files', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['deleted_by_id'], ['users.id'], name=op.f('fk_deletions_deleted_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deletions'))
    )
    with op.batch_alter_table('deletions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deletions_image_id'), ['image_id'], unique=False)

    if _sqlite():
        with op.batch_alter_table('images', schema=None, recreate='always',
                                  table_kwargs={'sqlite_autoincrement': True}):
            pass


def downgrade() -> None:
    if _sqlite():
        with op.batch_alter_table('images', schema=None, recreate='always'):
            pass

    with op.batch_alter_table('deletions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deletions_image_id'))

    op.drop_table('deletions')
