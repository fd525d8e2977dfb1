"""Table definitions (SQLAlchemy Core). The migration in ``migrations/`` creates them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

meta = Table(
    "ledger_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

bodies = Table(
    "bodies",
    metadata,
    Column("digest", LargeBinary(32), primary_key=True),
    Column("body_type", String(32), nullable=False),
    Column("content", LargeBinary, nullable=False),
)

records = Table(
    "records",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("leaf", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("body_digest", LargeBinary(32), nullable=False, unique=True),
    Column("time", String(32), nullable=False),
)

tiles = Table(
    "tiles",
    metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hashes", LargeBinary, nullable=False),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("time", String(32), nullable=False),
)

# Derived rows: one per registry record that applied (see ledger.registry.entries), written in the
# same transaction as the record. ``ledger check`` rebuilds them from the log and compares.
registry_entries = Table(
    "registry_entries",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("time", String(32), nullable=False),
    Column("name", String(128), nullable=False),
    Column("op", String(16), nullable=False),
    Column("entry", LargeBinary, nullable=False),
)

APPEND_ONLY = ("ledger_meta", "bodies", "records", "checkpoints")
DERIVED_APPEND_ONLY = ("registry_entries",)

# Operational state, not part of the log: rows here may be deleted (a revoked token), so the
# table lives in its own MetaData that the append-only migration never touches.
operational = MetaData()

api_tokens = Table(
    "api_tokens",
    operational,
    Column("name", String(128), primary_key=True),
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("scopes", String(64), nullable=False),
    Column("created", String(32), nullable=False),
    Column("expires", String(32), nullable=True),
)

# Submissions made durable but not yet integrated (PostgreSQL: see ledger.integrator). A row is
# deleted in the transaction that integrates it.
pending = Table(
    "pending",
    operational,
    Column("digest", LargeBinary(32), primary_key=True),
    Column("seq", BigInteger, Identity(), nullable=False),
    Column("body_type", String(32), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("mac", LargeBinary(32), nullable=False),
    Column("error", Text, nullable=True),
    # Set by the integrator when it logs the row (revision 0007): what its waiter acknowledges.
    Column("idx", BigInteger, nullable=True),
    Column("leaf", LargeBinary, nullable=True),
    Column("proof", LargeBinary, nullable=True),
    Column("cp_size", BigInteger, nullable=True),
    Column("done_at", DateTime(timezone=True), nullable=True),
    Column("submitted", BigInteger, nullable=True),  # Unix seconds, under the row's MAC
)

# The audit indexes (ledger.index): derived from stored bodies in the batch's own transaction,
# rebuilt by `ledger reindex` and compared by `ledger check`. Not append-only: reindex replaces
# them (under the write lock), and they hold nothing the log does not.
indexes = MetaData()

ix_terms = Table(
    "ix_terms",
    indexes,
    Column("kind", String(16), primary_key=True),
    Column("value", String(512), primary_key=True),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Index("ix_terms_by_record", "idx"),
)

ix_deps = Table(
    "ix_deps",
    indexes,
    Column("package", String(512), primary_key=True),
    Column("version", String(512), primary_key=True),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("digest", String(200), primary_key=True),
    Index("ix_deps_by_record", "idx"),
)

ix_vulns = Table(
    "ix_vulns",
    indexes,
    Column("vuln", String(512), primary_key=True),
    Column("product", String(512), primary_key=True),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("component", String(512), primary_key=True),
    Column("status", String(24), nullable=False),
    Index("ix_vulns_by_product", "product", "idx"),
    Index("ix_vulns_by_status", "vuln", "status", "idx"),  # a status search walks idx in order
)

INDEX_TABLES = (ix_terms, ix_deps, ix_vulns)
