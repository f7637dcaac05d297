"""migrate.py URL REVISION: alembic upgrade of one node (the test's driver)."""
import os
import sys

from alembic import command
from alembic.config import Config

cfg = Config()
cfg.set_main_option("script_location", os.path.dirname(os.path.abspath(__file__)))
cfg.set_main_option("sqlalchemy.url", sys.argv[1])
command.upgrade(cfg, sys.argv[2])
