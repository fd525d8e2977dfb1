"""The trust registry's derived rows (``registry_entries``), append-only like the log.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from ledger._internal.schema import DERIVED_APPEND_ONLY, metadata

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    for name in DERIVED_APPEND_ONLY:
        metadata.tables[name].create(bind, checkfirst=True)
        if bind.dialect.name == "sqlite":
            for what in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {name}_no_{what.lower()} BEFORE {what} ON {name} "
                    f"BEGIN SELECT RAISE(ABORT, 'ledger: table {name} is append-only'); END"
                )
        else:
            op.execute(
                f"CREATE TRIGGER {name}_append_only BEFORE UPDATE OR DELETE ON {name} "
                "FOR EACH ROW EXECUTE FUNCTION ledger_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {name}_no_truncate BEFORE TRUNCATE ON {name} "
                "FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only()"
            )


def downgrade() -> None:
    raise NotImplementedError("a ledger is never downgraded: it is append-only")
