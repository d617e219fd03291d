"""Alembic's environment for the ledger: migrations run on the connection the library hands over.

The library never reads an alembic.ini: :func:`incentives.ledger.database.upgrade`
builds the configuration and passes its connection (in a transaction) as
``config.attributes["connection"]``.
"""

from alembic import context

from incentives.ledger.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
