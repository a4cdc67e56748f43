"""sql/ stays true to the migrations, and the demo data loads."""

from __future__ import annotations

import difflib

import pytest
from django.core.management import call_command

from omserverweb.inventory.models import AppCategory, Server
from omserverweb.modules.models import ModuleDefinition
from omserverweb.schema import migration_sql, mysql_connection

SCHEMA_FILE = "sql/schema-mysql.sql"


def test_mysql_schema_file_matches_the_migrations(
    mysql_url: str, settings, django_db_blocker
) -> None:
    connection = mysql_connection(mysql_url)  # not the test database: only reads the version
    try:
        with django_db_blocker.unblock():
            generated = migration_sql(connection)
    finally:
        connection.close()
    committed = (settings.BASE_DIR / SCHEMA_FILE).read_text()
    if generated != committed:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(True), generated.splitlines(True), SCHEMA_FILE, "migrations"
            )
        )
        pytest.fail(f"{SCHEMA_FILE} drifted from the migrations; run `make schema`:\n{diff}")


def test_the_models_and_their_migrations_agree(db) -> None:
    """A model change without its migration (and so without its place in sql/) fails here."""
    try:
        call_command("makemigrations", "--check", "--dry-run", verbosity=0)
    except SystemExit as exc:
        pytest.fail(f"models changed without a migration (manage.py makemigrations): {exc}")


def test_schema_file_declares_the_console_indexes(settings) -> None:
    schema = (settings.BASE_DIR / SCHEMA_FILE).read_text()
    for index in (
        "job_created_idx",
        "job_status_idx",
        "job_module_idx",
        "job_user_idx",
        "result_host_idx",
        "event_host_time_idx",
        "uniq_event_host_seq",
    ):
        assert f"`{index}`" in schema


@pytest.mark.django_db
def test_demo_data_loads(settings) -> None:
    call_command("loaddata", settings.BASE_DIR / "sql" / "demo-data.json", verbosity=0)
    assert sorted(ModuleDefinition.objects.values_list("id", flat=True)) == list(range(1001, 1008))
    # make run's decision: the shipped demo modules are enabled (any other file arrives disabled)
    assert all(ModuleDefinition.objects.values_list("enabled", flat=True))
    assert AppCategory.objects.count() == 2
    assert Server.objects.count() == 4
    assert all(s.app_category_id for s in Server.objects.all())


def test_demo_module_definitions_match_their_mid_files(settings) -> None:
    """The console's definitions of 1001-1007 describe what the files really take."""
    import json

    from omserver.modules.registry import ModuleRegistry

    registry = ModuleRegistry(settings.BASE_DIR / "modules", "saltstack")
    fixture = json.loads((settings.BASE_DIR / "sql" / "demo-data.json").read_text())
    definitions = [e for e in fixture if e["model"] == "modules.moduledefinition"]
    assert [d["pk"] for d in definitions] == list(range(1001, 1008))
    for definition in definitions:
        module = registry.get(definition["pk"])
        fields = definition["fields"]
        assert (fields["name"], fields["caption"], fields["params_schema"]) == (
            module.name,
            module.caption,
            module.params,
        ), module.id
