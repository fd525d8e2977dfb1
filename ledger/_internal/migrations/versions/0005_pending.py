"""Pending submissions: durable, not yet in the log (PostgreSQL's shared write path).

Appenders insert here and commit; the one integrator holding the lease moves rows into the log in
batches and deletes them in the same transaction. Operational state, not log entries: rows are
deleted once integrated. ``mac`` authenticates a row with a key derived from the checkpoint key,
so a database writer without the key file cannot plant a body the ledger would sign. ``error`` is set when a row cannot be integrated on its own (its waiting
appender is told why; submitting the same body again clears it).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending",
        sa.Column("digest", sa.LargeBinary(32), primary_key=True),
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("body_type", sa.String(32), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("mac", sa.LargeBinary(32), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("pending_by_seq", "pending", ["seq"])


def downgrade() -> None:
    op.drop_index("pending_by_seq", "pending")
    op.drop_table("pending")
