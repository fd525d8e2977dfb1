"""CHECK constraints: positions are never negative; on SQLite, bytes columns hold bytes.

A row with a negative index is invisible to a reader that starts at 0, yet its body digest is
taken (``records.body_digest`` is unique), so that body could never be appended. SQLite also keeps
any type in any column; the ``typeof`` checks refuse TEXT where bytes belong.

SQLite cannot add a constraint to an existing table: batch mode rebuilds each table (copy, drop,
rename), and dropping a table drops its triggers, so the append-only triggers are read from
``sqlite_master`` first and re-created, unchanged, afterwards.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_NONNEGATIVE = {
    "records": ["idx"],
    "tiles": ["level", "idx"],
    "checkpoints": ["size"],
}
_SQLITE_BLOBS = {
    "records": ["leaf", "leaf_hash", "body_digest"],
    "tiles": ["hashes"],
    "checkpoints": ["root"],
    "bodies": ["digest", "content"],
}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        for table, columns in _NONNEGATIVE.items():
            for col in columns:
                op.create_check_constraint(f"{table}_{col}_nonnegative", table, f"{col} >= 0")
        return
    for table in ("records", "tiles", "checkpoints", "bodies"):
        triggers = bind.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?",
            (table,),
        ).all()
        for name, _ in triggers:
            op.execute(f"DROP TRIGGER {name}")
        with op.batch_alter_table(table, recreate="always") as batch:
            for col in _NONNEGATIVE.get(table, []):
                batch.create_check_constraint(f"{table}_{col}_nonnegative", f"{col} >= 0")
            for col in _SQLITE_BLOBS[table]:
                batch.create_check_constraint(f"{table}_{col}_is_blob", f"typeof({col}) = 'blob'")
        for _, sql in triggers:
            op.execute(sql)


def downgrade() -> None:
    raise NotImplementedError("a ledger is never downgraded: it is append-only")
