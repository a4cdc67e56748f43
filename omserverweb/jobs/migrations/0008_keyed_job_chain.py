from django.db import migrations, models


def seal_job_chain(apps, schema_editor):
    """The job records' links so far stay unkeyed; the head seals that."""
    from omserverweb.audit.chain import JOBS_SCOPE, seal_unkeyed

    seal_unkeyed(apps.get_model("audit", "ChainHead").objects.filter(scope=JOBS_SCOPE))


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0007_durable_record"),
        ("audit", "0003_keyed_chains_rejected_events"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="chain_key",
            field=models.CharField(blank=True, max_length=16, verbose_name="chain key"),
        ),
        migrations.RunPython(seal_job_chain, migrations.RunPython.noop),
    ]
