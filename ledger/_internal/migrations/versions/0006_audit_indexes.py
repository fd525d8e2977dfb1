"""The audit indexes (``ix_terms``, ``ix_deps``, ``ix_vulns``), filled from the log at once.

A ledger that already holds records gets their rows derived here, in the migration's own
transaction, so the rule "index rows exist iff their records do" holds from this revision on.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

from ledger._internal.schema import indexes

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from ledger.index.maintain import index_existing

    bind = op.get_bind()
    indexes.create_all(bind)
    index_existing(bind)


def downgrade() -> None:
    bind = op.get_bind()
    indexes.drop_all(bind)
