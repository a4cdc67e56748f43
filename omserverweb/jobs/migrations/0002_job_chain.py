from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="chain_pos",
            field=models.PositiveBigIntegerField(
                blank=True, null=True, verbose_name="chain position"
            ),
        ),
        migrations.AddField(
            model_name="job",
            name="prev_hash",
            field=models.CharField(blank=True, max_length=64, verbose_name="previous hash"),
        ),
        migrations.AddField(
            model_name="job",
            name="chain_hash",
            field=models.CharField(blank=True, max_length=64, verbose_name="hash"),
        ),
        migrations.AddConstraint(
            model_name="job",
            constraint=models.UniqueConstraint(fields=("chain_pos",), name="uniq_job_chain_pos"),
        ),
    ]
