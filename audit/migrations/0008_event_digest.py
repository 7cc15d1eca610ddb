"""On PostgreSQL, every audit event gets its format-3 seal digest computed once, at INSERT.

A BEFORE INSERT trigger writes the first 16 bytes of the SHA-256 of the event's row text (the
form ``audit.seals._pg_row_digest`` spells) into the column ``digest``, which the Django model
does not know: nothing but the trigger writes it, whatever the INSERT says. Sealing then reads
the stored digests instead of hashing every row again; verification still recomputes each digest
from the row and compares it with the stored one and with the seal. Events inserted before this
migration have no digest: sealing computes theirs as before. Adding a nullable column without a
default does not rewrite the table.
"""

from django.db import migrations

# The columns of format 3, alphabetical, as they were when this migration was written
# (audit.seals._FIELDS_TX); occurred_at as microseconds since 1970.
ROW = (
    'NEW."action", NEW."actor_id", NEW."actor_kind", NEW."actor_label", NEW."id", NEW."ip", '
    'NEW."metadata", (extract(epoch FROM NEW."occurred_at") * 1000000)::bigint, NEW."outcome", '
    'NEW."request_id", NEW."target_id", NEW."target_kind", NEW."target_label", NEW."tenant_id", '
    'NEW."txid", NEW."user_agent"'
)

INSTALL = f"""
ALTER TABLE audit_auditevent ADD COLUMN IF NOT EXISTS digest bytea;
COMMENT ON COLUMN audit_auditevent.digest IS
    'Seal digest of the row, written by the trigger keyward_audit_digest at INSERT';
CREATE OR REPLACE FUNCTION keyward_audit_digest() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.digest := substring(sha256(convert_to(row({ROW})::text, 'UTF8')) FROM 1 FOR 16);
    RETURN NEW;
END;
$$;
CREATE TRIGGER audit_auditevent_digest BEFORE INSERT ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION keyward_audit_digest();
"""

UNINSTALL = """
DROP TRIGGER IF EXISTS audit_auditevent_digest ON audit_auditevent;
DROP FUNCTION IF EXISTS keyward_audit_digest();
ALTER TABLE audit_auditevent DROP COLUMN IF EXISTS digest;
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(INSTALL, params=None)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UNINSTALL, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0007_seal_commit_order_and_signature")]
    operations = [migrations.RunPython(install, uninstall, elidable=False)]
