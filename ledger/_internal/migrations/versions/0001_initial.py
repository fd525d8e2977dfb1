"""Initial schema: records, bodies, tiles, checkpoints, meta, and append-only triggers.

Revision ID: 0001
Revises:
"""

from alembic import op

from ledger._internal.schema import APPEND_ONLY, metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_SQLITE_TILES = """
CREATE TRIGGER tiles_extend_only BEFORE UPDATE ON tiles
WHEN NEW.level != OLD.level OR NEW.idx != OLD.idx
  OR length(NEW.hashes) <= length(OLD.hashes)
  OR substr(NEW.hashes, 1, length(OLD.hashes)) != OLD.hashes
BEGIN SELECT RAISE(ABORT, 'ledger: tiles may only be extended'); END
"""

_PG_FUNCTIONS = [
    """
CREATE OR REPLACE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'ledger: table % is append-only (% refused)', TG_TABLE_NAME, TG_OP; END $$
""",
    """
CREATE OR REPLACE FUNCTION ledger_tiles_extend_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.level <> OLD.level OR NEW.idx <> OLD.idx
     OR length(NEW.hashes) <= length(OLD.hashes)
     OR substring(NEW.hashes from 1 for length(OLD.hashes)) <> OLD.hashes THEN
    RAISE EXCEPTION 'ledger: tiles may only be extended';
  END IF;
  RETURN NEW;
END $$
""",
]


def upgrade() -> None:
    bind = op.get_bind()
    metadata.create_all(bind)
    if bind.dialect.name == "sqlite":
        for table in APPEND_ONLY:
            for what in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{what.lower()} BEFORE {what} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'ledger: table {table} is append-only'); END"
                )
        op.execute(_SQLITE_TILES)
        op.execute(
            "CREATE TRIGGER tiles_no_delete BEFORE DELETE ON tiles "
            "BEGIN SELECT RAISE(ABORT, 'ledger: table tiles is append-only'); END"
        )
    else:
        for fn in _PG_FUNCTIONS:
            op.execute(fn)
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION ledger_append_only()"
            )
        for table in (*APPEND_ONLY, "tiles"):
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only()"
            )
        op.execute(
            "CREATE TRIGGER tiles_extend_only BEFORE UPDATE ON tiles "
            "FOR EACH ROW EXECUTE FUNCTION ledger_tiles_extend_only()"
        )
        op.execute(
            "CREATE TRIGGER tiles_no_delete BEFORE DELETE ON tiles "
            "FOR EACH ROW EXECUTE FUNCTION ledger_append_only()"
        )


def downgrade() -> None:
    raise NotImplementedError("a ledger is never downgraded: it is append-only")
