"""Steps: each host's one result of the jobs recorded so far becomes its step 1.

Those jobs keep ``record_format`` 1, so the job chain hashes them as they were
hashed when they ended; a host the job never ran ("not run: …") keeps its
reason as the host's ``error`` and gets no step.
"""

import django.db.models.deletion
from django.db import migrations, models

BATCH = 500


def results_to_steps(apps, schema_editor):
    JobHost = apps.get_model("jobs", "JobHost")
    JobStep = apps.get_model("jobs", "JobStep")
    rows = JobHost.objects.select_related("job").order_by("pk")
    steps, not_run = [], []
    for row in rows.iterator(chunk_size=BATCH):
        if row.status == "not_run":
            not_run.append((row.pk, row.stderr))
            continue
        steps.append(
            JobStep(
                job_id=row.job_id,
                host=row.host,
                number=1,
                status=row.status,
                rc=row.rc,
                stdout=row.stdout,
                stderr=row.stderr,
                truncated=row.truncated,
                started_at=row.job.started_at,
                duration=row.duration,
                seq=row.seq,
            )
        )
        if len(steps) >= BATCH:
            JobStep.objects.bulk_create(steps)
            steps = []
    JobStep.objects.bulk_create(steps)
    for pk, reason in not_run:
        JobHost.objects.filter(pk=pk).update(error=reason)


def steps_to_results(apps, schema_editor):
    JobHost = apps.get_model("jobs", "JobHost")
    JobStep = apps.get_model("jobs", "JobStep")
    for row in JobHost.objects.order_by("pk").iterator(chunk_size=BATCH):
        steps = list(JobStep.objects.filter(job_id=row.job_id, host=row.host).order_by("number"))
        row.stdout = "\n".join(s.stdout for s in steps if s.stdout)
        row.stderr = "\n".join([*(s.stderr for s in steps if s.stderr), *filter(None, [row.error])])
        row.save(update_fields=["stdout", "stderr"])


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0005_host_status_not_run"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="record_format",
            field=models.PositiveSmallIntegerField(default=1, verbose_name="record format"),
        ),
        migrations.AlterField(
            model_name="job",
            name="record_format",
            field=models.PositiveSmallIntegerField(default=2, verbose_name="record format"),
        ),
        migrations.AddField(
            model_name="jobhost",
            name="error",
            field=models.TextField(blank=True, verbose_name="error"),
        ),
        migrations.AlterField(
            model_name="jobhost",
            name="status",
            field=models.CharField(
                choices=[
                    ("running", "running"),
                    ("ok", "ok"),
                    ("failed", "failed"),
                    ("unreachable", "unreachable"),
                    ("timeout", "timeout"),
                    ("cancelled", "cancelled"),
                    ("not_run", "not run"),
                ],
                max_length=12,
                verbose_name="status",
            ),
        ),
        migrations.CreateModel(
            name="JobOutput",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("host", models.CharField(max_length=253, verbose_name="host")),
                ("step", models.PositiveIntegerField(verbose_name="step")),
                ("stream", models.CharField(max_length=6, verbose_name="stream")),
                ("text", models.TextField(verbose_name="text")),
                ("seq", models.PositiveIntegerField(verbose_name="sequence")),
                (
                    "job",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="output",
                        to="jobs.job",
                        verbose_name="job",
                    ),
                ),
            ],
            options={
                "verbose_name": "live output",
                "verbose_name_plural": "live output",
                "ordering": ["job", "seq"],
                "indexes": [
                    models.Index(fields=["job", "seq"], name="output_job_seq_idx"),
                    models.Index(fields=["job", "host", "step"], name="output_job_step_idx"),
                ],
            },
        ),
        migrations.CreateModel(
            name="JobStep",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("host", models.CharField(max_length=253, verbose_name="host")),
                ("number", models.PositiveIntegerField(verbose_name="step")),
                ("action", models.TextField(blank=True, verbose_name="action")),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("running", "running"),
                            ("ok", "ok"),
                            ("failed", "failed"),
                            ("unreachable", "unreachable"),
                            ("timeout", "timeout"),
                            ("cancelled", "cancelled"),
                            ("not_run", "not run"),
                        ],
                        max_length=12,
                        verbose_name="status",
                    ),
                ),
                ("rc", models.IntegerField(blank=True, null=True, verbose_name="return code")),
                ("stdout", models.TextField(blank=True, verbose_name="stdout")),
                ("stderr", models.TextField(blank=True, verbose_name="stderr")),
                ("truncated", models.BooleanField(default=False, verbose_name="truncated")),
                ("started_at", models.DateTimeField(blank=True, null=True, verbose_name="started")),
                ("duration", models.FloatField(default=0.0, verbose_name="duration (s)")),
                ("seq", models.PositiveIntegerField(default=0, verbose_name="sequence")),
                (
                    "job",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="steps",
                        to="jobs.job",
                        verbose_name="job",
                    ),
                ),
            ],
            options={
                "verbose_name": "step",
                "verbose_name_plural": "steps",
                "ordering": ["job", "host", "number"],
                "indexes": [models.Index(fields=["job", "seq"], name="step_job_seq_idx")],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("job", "host", "number"), name="uniq_step_job_host"
                    )
                ],
            },
        ),
        migrations.RunPython(results_to_steps, steps_to_results),
        migrations.RemoveField(
            model_name="jobhost",
            name="stderr",
        ),
        migrations.RemoveField(
            model_name="jobhost",
            name="stdout",
        ),
    ]
