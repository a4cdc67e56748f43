import django.db.models.deletion
from django.db import migrations, models


def seal_host_chains(apps, schema_editor):
    """The events' links so far stay unkeyed; their heads seal that, so none can join them."""
    from omserverweb.audit.chain import seal_unkeyed

    seal_unkeyed(apps.get_model("audit", "ChainHead").objects.filter(scope__startswith="host:"))


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_chain_tokens_rules"),
    ]

    operations = [
        migrations.AddField(
            model_name="chainhead",
            name="legacy_hash",
            field=models.CharField(blank=True, max_length=64, verbose_name="last unkeyed hash"),
        ),
        migrations.AddField(
            model_name="chainhead",
            name="legacy_length",
            field=models.PositiveBigIntegerField(default=0, verbose_name="unkeyed links"),
        ),
        migrations.AddField(
            model_name="chainhead",
            name="seal",
            field=models.CharField(blank=True, max_length=64, verbose_name="seal"),
        ),
        migrations.AddField(
            model_name="chainhead",
            name="seal_key",
            field=models.CharField(blank=True, max_length=16, verbose_name="seal key"),
        ),
        migrations.AddField(
            model_name="commandevent",
            name="chain_key",
            field=models.CharField(blank=True, max_length=16, verbose_name="chain key"),
        ),
        migrations.CreateModel(
            name="RejectedEvent",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("host", models.CharField(max_length=253, verbose_name="host")),
                ("seq", models.PositiveBigIntegerField(verbose_name="sequence number")),
                ("reason", models.CharField(max_length=500, verbose_name="reason")),
                ("first_at", models.DateTimeField(auto_now_add=True, verbose_name="first refused")),
                ("last_at", models.DateTimeField(verbose_name="last refused")),
                ("attempts", models.PositiveIntegerField(default=1, verbose_name="attempts")),
                (
                    "token",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="audit.ingesttoken",
                        verbose_name="ingest token",
                    ),
                ),
            ],
            options={
                "verbose_name": "rejected event",
                "verbose_name_plural": "rejected events",
                "ordering": ["host", "seq"],
                "constraints": [
                    models.UniqueConstraint(fields=("host", "seq"), name="uniq_rejected_host_seq")
                ],
            },
        ),
        migrations.RunPython(seal_host_chains, migrations.RunPython.noop),
    ]
