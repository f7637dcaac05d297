"""add a column"""
import sqlalchemy as sa
from alembic import op

revision = "r2"
down_revision = "r1"


def upgrade():
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("color", sa.Text))
