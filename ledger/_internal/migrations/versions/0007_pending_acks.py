"""Acknowledgements on pending rows: the integrator leaves each row's record and proof behind.

Until 0006 the integrator deleted a pending row in the transaction that logged it, and every
waiting appender then read its record and computed its inclusion proof from the tiles — most of
an append's CPU on PostgreSQL (docs/benchmarks.md). From this revision the integrator, which has
just computed every proof of its batch (and verified them against the checkpoint it signed),
writes them onto the rows instead: ``idx``, ``leaf`` (the record's bytes), ``proof`` (the
concatenated hashes) and ``cp_size`` (the checkpoint they are against). A waiter reads its row,
verifies the checkpoint with the ledger's key, the record against the body and the proof against
the checkpoint, and only then acknowledges; a row that does not verify is ignored and the body
looked up in the log as before, so the columns can make an append faster but never make a wrong
answer. Rows acknowledged ``done_at`` more than a short while ago are deleted by the next batch.
A row also carries its submission time (``submitted``), which its MAC covers: the integrator
refuses a row older than a few minutes, so a row held back or revived later (after its signer was
revoked, say) is never signed into the log.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pending", sa.Column("idx", sa.BigInteger, nullable=True))
    op.add_column("pending", sa.Column("leaf", sa.LargeBinary, nullable=True))
    op.add_column("pending", sa.Column("proof", sa.LargeBinary, nullable=True))
    op.add_column("pending", sa.Column("cp_size", sa.BigInteger, nullable=True))
    op.add_column("pending", sa.Column("done_at", sa.DateTime(timezone=True), nullable=True))
    # The submission time (Unix seconds) the row's MAC covers: a row older than a few minutes is
    # stale and never signed in (ledger.pending.MAX_PENDING_AGE_SECONDS).
    op.add_column("pending", sa.Column("submitted", sa.BigInteger, nullable=True))
    # What the integrator reads: rows neither integrated nor failed, oldest first.
    op.create_index(
        "pending_todo",
        "pending",
        ["seq"],
        postgresql_where=sa.text("done_at IS NULL AND error IS NULL"),
        sqlite_where=sa.text("done_at IS NULL AND error IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("pending_todo", "pending")
    for column in ("submitted", "done_at", "cp_size", "proof", "leaf", "idx"):
        op.drop_column("pending", column)
