"""The MySQL schema as the migrations create it, for sql/schema-mysql.sql."""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor
from django.db.utils import load_backend

from omserverweb.database import database_settings

HEADER = """\
-- OMServer schema for MySQL / MariaDB (utf8mb4).
-- Generated from the Django migrations by `manage.py sqlschema`; do not edit:
-- a test fails when this file and the migrations disagree.
-- Apply with `manage.py migrate` against the database; this file is for review.
"""


def mysql_connection(url: str) -> BaseDatabaseWrapper:
    """A connection to the MySQL server at ``url``, outside DATABASES."""
    settings = database_settings(url, data_dir=None)  # type: ignore[arg-type]
    if settings["ENGINE"] != "django.db.backends.mysql":
        raise ValueError("the schema is generated against a mysql:// database")
    settings = {**connections["default"].settings_dict, **settings}
    settings.setdefault("TIME_ZONE", None)
    return load_backend(settings["ENGINE"]).DatabaseWrapper(settings, alias=DEFAULT_DB_ALIAS)


def migration_sql(connection: BaseDatabaseWrapper) -> str:
    """Every statement of a full forward migration, in order."""
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes(), clean_start=True)
    return HEADER + "\n".join(executor.loader.collect_sql(plan)) + "\n"
