# Alembic environment of the migration test (tests/integration/schema_alembic.sh)
# and the one docs/migrating.md shows: batch mode on SQLite, the whole
# upgrade in one transaction, and on SQLite, where syncq is given
# ($SYNCQ_SQLITE_EXT), sync_repair() at the end of that transaction, so that
# a table the migration rebuilt is captured again before any other
# connection can write to it.
import os

from alembic import context
from sqlalchemy import create_engine, event

url = context.config.get_main_option("sqlalchemy.url")
engine = create_engine(url)
is_sqlite = engine.dialect.name == "sqlite"
syncq = os.environ.get("SYNCQ_SQLITE_EXT")

if is_sqlite:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None          # BEGIN ourselves, below
        dbapi_conn.execute("PRAGMA busy_timeout = 10000")
        if syncq:
            dbapi_conn.enable_load_extension(True)
            dbapi_conn.load_extension(syncq)
            dbapi_conn.enable_load_extension(False)

    @event.listens_for(engine, "begin")
    def on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")

with engine.connect() as connection:
    context.configure(connection=connection, render_as_batch=is_sqlite,
                      transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()
        if is_sqlite and syncq:
            connection.exec_driver_sql("SELECT sync_repair()")
