"""change a column's type (SQLite: the table is rebuilt)"""
import sqlalchemy as sa
from alembic import op

revision = "r5"
down_revision = "r4"


def upgrade():
    with op.batch_alter_table("items") as batch:
        batch.alter_column("quantity", type_=sa.BigInteger, existing_type=sa.Integer)
