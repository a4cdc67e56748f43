from django.db import migrations


class Migration(migrations.Migration):
    """The host row is ``JobHost``: ``HostResult`` is the SDK's name for a step's result."""

    dependencies = [
        ("jobs", "0003_zones"),
    ]

    operations = [
        migrations.RenameModel(old_name="HostResult", new_name="JobHost"),
    ]
