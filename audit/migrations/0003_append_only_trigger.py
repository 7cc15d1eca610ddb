"""On PostgreSQL, refuse UPDATE, DELETE and TRUNCATE of audit events and seals in the database.

Row-level triggers do not fire on TRUNCATE, so a statement-level trigger covers it. The one escape
is the transaction-local setting ``keyward.audit_prune = 'on'`` (``SET LOCAL``), which lets DELETE
and TRUNCATE (never UPDATE) through. Only ``audit_prune`` and the test harness's table flush set
it; being transaction-local, it cannot leak into other work on the same connection.
"""

from django.db import migrations

TABLES = ("audit_auditevent", "audit_auditseal")

INSTALL = """
CREATE OR REPLACE FUNCTION keyward_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'TRUNCATE')
       AND coalesce(current_setting('keyward.audit_prune', true), '') = 'on' THEN
        IF TG_LEVEL = 'ROW' THEN
            RETURN OLD;
        END IF;
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'keyward: % on % refused: the audit log is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(INSTALL, params=None)
    for table in TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION keyward_audit_append_only();"
        )
        schema_editor.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION keyward_audit_append_only();"
        )


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_change ON {table};")
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};")
    schema_editor.execute("DROP FUNCTION IF EXISTS keyward_audit_append_only();")


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_seal")]
    operations = [migrations.RunPython(install, uninstall, elidable=False)]
