"""Add AuditSeal.format (existing seals are format 1) and, on PostgreSQL, store entries uncompressed.

Entries are ids and SHA-256 prefixes: pglz cannot shrink them, yet trying costs about a second per
million events sealed. ``SET STORAGE EXTERNAL`` keeps them out of line without compressing.
"""

from django.db import migrations, models


def store_external(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "ALTER TABLE audit_auditseal ALTER COLUMN entries SET STORAGE EXTERNAL", params=None
        )


def store_extended(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "ALTER TABLE audit_auditseal ALTER COLUMN entries SET STORAGE EXTENDED", params=None
        )


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0003_append_only_trigger'),
    ]

    operations = [
        migrations.AddField(
            model_name='auditseal',
            name='format',
            field=models.PositiveSmallIntegerField(choices=[(1, 'canonical JSON hashed in Python'), (2, 'JSON array hashed in PostgreSQL')], default=1),
        ),
        migrations.RunPython(store_external, store_extended, elidable=False),
    ]
