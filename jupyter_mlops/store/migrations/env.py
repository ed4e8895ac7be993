"""Alembic environment: runs on the connection the metadata store hands over (no URL in a config file)."""

from alembic import context

from jupyter_mlops.store.schema import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=context.config.attributes["version_table"],
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
