"""Alembic environment: always run against the connection the ledger hands in."""

from alembic import context

from ledger._internal.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
