import django.db.models.functions.text
from django.db import migrations, models
from django.db.models.functions import Lower

DUPLICATES = (
    "Service ID names must be unique within a tenant ignoring case, and these are not "
    "(tenant id, name): %s. Rename all but one of each, then migrate again."
)


def refuse_case_duplicates(apps, schema_editor):
    """Fail with the names to fix, rather than with the database's IntegrityError."""
    ServiceID = apps.get_model("accounts", "ServiceID")
    seen: dict[tuple[int, str], str] = {}
    clashes = []
    rows = ServiceID.objects.annotate(lower=Lower("name")).order_by("tenant_id", "id")
    for tenant_id, name, lower in rows.values_list("tenant_id", "name", "lower"):
        first = seen.setdefault((tenant_id, lower), name)
        if first != name:
            clashes.append(f"({tenant_id}, {first!r} / {name!r})")
    if clashes:
        raise RuntimeError(DUPLICATES % ", ".join(clashes))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_authenticator_device"),
    ]

    operations = [
        migrations.RunPython(refuse_case_duplicates, migrations.RunPython.noop),
        # The new constraint first: there is no moment without one.
        migrations.AddConstraint(
            model_name="serviceid",
            constraint=models.UniqueConstraint(
                django.db.models.functions.text.Lower("name"),
                models.F("tenant"),
                name="service_id_name_ci_unique",
                violation_error_message="A service ID with this name already exists here.",
            ),
        ),
        migrations.RemoveConstraint(
            model_name="serviceid",
            name="service_id_name_unique",
        ),
    ]
