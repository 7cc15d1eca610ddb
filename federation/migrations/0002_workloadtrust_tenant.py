import django.db.models.deletion
from django.db import migrations, models


def tenant_of_service_id(apps, schema_editor):
    WorkloadTrust = apps.get_model("federation", "WorkloadTrust")
    for trust in WorkloadTrust.objects.select_related("service_id"):
        trust.tenant_id = trust.service_id.tenant_id
        trust.save(update_fields=["tenant"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_tenant_policies_for_passkeys_tokens_warnings_approvals"),
        ("federation", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="workloadtrust",
            name="tenant",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="accounts.tenant",
            ),
        ),
        migrations.RunPython(tenant_of_service_id, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="workloadtrust",
            name="tenant",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.tenant"
            ),
        ),
    ]
