"""drop a column (SQLite: the table is rebuilt)"""
from alembic import op

revision = "r3"
down_revision = "r2"


def upgrade():
    with op.batch_alter_table("items") as batch:
        batch.drop_column("note")
