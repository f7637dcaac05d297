"""rename a column (SQLite: the table is rebuilt)"""
from alembic import op

revision = "r4"
down_revision = "r3"


def upgrade():
    with op.batch_alter_table("items") as batch:
        batch.alter_column("qty", new_column_name="quantity")
