"""DRF's tokens (``rest_framework.authtoken``, one clear key per user) become API tokens.

Each old key keeps working: its sha256 is stored as an API token named
"API token (before per-user tokens)", with no expiry. The clear-text table is then
dropped, and ``authtoken``'s migration records with it (that app is no longer installed).
"""

import hashlib
from datetime import UTC, datetime

from django.db import migrations
from django.db.migrations.recorder import MigrationRecorder
from django.utils.dateparse import parse_datetime

OLD_TABLE = "authtoken_token"
MIGRATED_NAME = "API token (before per-user tokens)"


def _aware(value: datetime | str) -> datetime:
    moment = parse_datetime(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def from_drf_tokens(apps, schema_editor) -> None:
    connection = schema_editor.connection
    if OLD_TABLE not in connection.introspection.table_names():
        return
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        columns = f"{quote('key')}, user_id, created"
        cursor.execute(f"SELECT {columns} FROM {quote(OLD_TABLE)}")  # noqa: S608 (constants)
        rows = cursor.fetchall()
    ApiToken = apps.get_model("apitokens", "ApiToken")
    ApiToken.objects.bulk_create(
        ApiToken(
            user_id=user_id,
            name=MIGRATED_NAME,
            digest=hashlib.sha256(key.encode()).hexdigest(),
            prefix=key[:8],
            created_at=_aware(created),
        )
        for key, user_id, created in rows
    )
    MigrationRecorder(connection).migration_qs.filter(app="authtoken").delete()


class Migration(migrations.Migration):
    dependencies = [("apitokens", "0001_api_tokens")]

    # The drop outside the copy's transaction: MySQL cannot roll DDL back.
    operations = [
        migrations.RunPython(from_drf_tokens, migrations.RunPython.noop),
        migrations.RunSQL(f"DROP TABLE IF EXISTS {OLD_TABLE}", migrations.RunSQL.noop),
    ]
