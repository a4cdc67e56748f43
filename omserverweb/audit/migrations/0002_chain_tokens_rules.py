import omserverweb.audit.models
import django.db.models.deletion
from django.db import migrations, models

GENESIS = "0" * 64

DEFAULT_RULES = [
    ("rm -rf /", r"rm\s+(-[a-zA-Z]+\s+)*-[a-zA-Z]*[rR][a-zA-Z]*\s+(-[a-zA-Z]+\s+)*/(\s|\*|$)"),
    ("chmod 777", r"chmod\s+(-[a-zA-Z]+\s+)*0?777"),
    ("curl | sh", r"(curl|wget)\b.*\|\s*(sudo\s+)?(ba|z|da)?sh\b"),
]


def link_existing(apps, schema_editor):
    """Events stored before the chain existed become its first links."""
    from omserverweb.audit.chain import event_content, host_scope, unkeyed_hash

    CommandEvent = apps.get_model("audit", "CommandEvent")
    ChainHead = apps.get_model("audit", "ChainHead")
    hosts = CommandEvent.objects.values_list("host", flat=True).distinct()
    for host in sorted(set(hosts)):
        last, pos = GENESIS, 0
        for event in CommandEvent.objects.filter(host=host).order_by("id"):
            pos += 1
            event.chain_pos, event.prev_hash = pos, last
            fields = {
                f: getattr(event, f)
                for f in (
                    "host",
                    "user",
                    "source",
                    "cwd",
                    "command",
                    "event_time",
                    "seq",
                    "chain_pos",
                )
            }
            event.chain_hash = last = unkeyed_hash(last, event_content(fields))
            event.save(update_fields=["chain_pos", "prev_hash", "chain_hash"])
        ChainHead.objects.create(
            scope=host_scope(host), length=pos, last_hash=last, anchor_hash=GENESIS
        )


def default_rules(apps, schema_editor):
    AlertRule = apps.get_model("audit", "AlertRule")
    for name, pattern in DEFAULT_RULES:
        AlertRule.objects.get_or_create(name=name, defaults={"pattern": pattern})


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
        ("inventory", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="ChainHead",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("scope", models.CharField(max_length=300, unique=True, verbose_name="chain")),
                ("length", models.PositiveBigIntegerField(default=0, verbose_name="links made")),
                ("last_hash", models.CharField(max_length=64, verbose_name="last hash")),
                (
                    "anchor_pos",
                    models.PositiveBigIntegerField(default=1, verbose_name="first kept position"),
                ),
                ("anchor_hash", models.CharField(max_length=64, verbose_name="anchor hash")),
            ],
            options={"verbose_name": "chain head", "verbose_name_plural": "chain heads"},
        ),
        migrations.CreateModel(
            name="AlertRule",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=100, unique=True, verbose_name="name")),
                (
                    "pattern",
                    models.CharField(
                        max_length=500,
                        validators=[omserverweb.audit.models.validate_pattern],
                        verbose_name="pattern",
                    ),
                ),
                ("enabled", models.BooleanField(default=True, verbose_name="enabled")),
            ],
            options={
                "verbose_name": "alert rule",
                "verbose_name_plural": "alert rules",
                "ordering": ["name"],
            },
        ),
        migrations.CreateModel(
            name="IngestToken",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=100, verbose_name="name")),
                (
                    "digest",
                    models.CharField(max_length=64, unique=True, verbose_name="token digest"),
                ),
                ("prefix", models.CharField(max_length=12, verbose_name="token prefix")),
                ("created_by", models.CharField(max_length=150, verbose_name="created by")),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="created")),
                ("revoked_at", models.DateTimeField(blank=True, null=True, verbose_name="revoked")),
                (
                    "app_category",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="inventory.appcategory",
                        verbose_name="application category",
                    ),
                ),
                (
                    "server",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="inventory.server",
                        verbose_name="server",
                    ),
                ),
            ],
            options={
                "verbose_name": "ingest token",
                "verbose_name_plural": "ingest tokens",
                "ordering": ["-created_at", "-id"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(
                            ("server__isnull", True),
                            ("app_category__isnull", True),
                            _connector="XOR",
                        ),
                        name="ingest_token_one_scope",
                    ),
                ],
            },
        ),
        migrations.AddField(
            model_name="commandevent",
            name="chain_pos",
            field=models.PositiveBigIntegerField(
                blank=True, null=True, verbose_name="chain position"
            ),
        ),
        migrations.AddField(
            model_name="commandevent",
            name="prev_hash",
            field=models.CharField(blank=True, max_length=64, verbose_name="previous hash"),
        ),
        migrations.AddField(
            model_name="commandevent",
            name="chain_hash",
            field=models.CharField(blank=True, max_length=64, verbose_name="hash"),
        ),
        migrations.RunPython(link_existing, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="commandevent",
            constraint=models.UniqueConstraint(
                fields=("host", "chain_pos"), name="uniq_event_host_pos"
            ),
        ),
        migrations.RunPython(default_rules, migrations.RunPython.noop),
    ]
