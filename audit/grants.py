"""What the database role the app connects as could do to the audit tables (PostgreSQL only).

``manage.py audit_check_grants`` prints these findings. A role that can rewrite the audit trail
(change or delete rows, or switch the append-only trigger off) makes the trigger advisory; the
seal signatures still reveal a rewrite, but only after the fact.
"""

from dataclasses import dataclass

from django.db import connection

TABLES = ("audit_auditevent", "audit_auditseal")
TRIGGERS = ("{table}_no_change", "{table}_no_truncate")
FUNCTION = "keyward_audit_append_only()"
# Table privileges that let a role rewrite rows or add a trigger that changes them as they come.
PRIVILEGES = ("UPDATE", "DELETE", "TRUNCATE", "TRIGGER")


@dataclass(frozen=True)
class Finding:
    fatal: bool  # the role can rewrite the audit tables this way
    text: str


def audit_grants() -> tuple[str, list[Finding]]:
    """Return the role the connection runs as and what it could do to the audit tables."""
    findings: list[Finding] = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, rolsuper, rolbypassrls, rolreplication, rolcreaterole "
            "FROM pg_roles WHERE rolname = current_user"
        )
        role, superuser, bypassrls, replication, createrole = cursor.fetchone()
        if superuser:
            findings.append(Finding(True, f"role {role} is a superuser: it can do anything"))
        if createrole:
            findings.append(
                Finding(True, f"role {role} has CREATEROLE: it can grant itself other roles")
            )
        if bypassrls:
            findings.append(Finding(False, f"role {role} has BYPASSRLS (row security is unused)"))
        if replication:
            findings.append(Finding(False, f"role {role} has REPLICATION: it can read the WAL"))
        # PostgreSQL 15 can grant SET on a superuser-only setting; before it only superusers can.
        settable = False
        if connection.pg_version >= 150000:
            cursor.execute(
                "SELECT has_parameter_privilege(current_user, 'session_replication_role', 'SET')"
            )
            settable = cursor.fetchone()[0]
        if settable:
            findings.append(
                Finding(True, f"role {role} can SET session_replication_role, which skips triggers")
            )
        for table in TABLES:
            cursor.execute(
                "SELECT pg_has_role(current_user, c.relowner, 'MEMBER'),"
                " pg_get_userbyid(c.relowner),"
                " has_table_privilege(current_user, c.oid, 'UPDATE'),"
                " has_table_privilege(current_user, c.oid, 'DELETE'),"
                " has_table_privilege(current_user, c.oid, 'TRUNCATE'),"
                " has_table_privilege(current_user, c.oid, 'TRIGGER')"
                " FROM pg_class c WHERE c.oid = %s::regclass",
                [table],
            )
            owns, owner, *privileges = cursor.fetchone()
            if owns:
                findings.append(
                    Finding(
                        True,
                        f"role {role} owns {table} (as {owner}): it can disable or drop its "
                        "triggers (ALTER TABLE … DISABLE TRIGGER)",
                    )
                )
            for privilege, granted in zip(PRIVILEGES, privileges, strict=True):
                if granted:
                    findings.append(Finding(True, f"role {role} can {privilege} {table}"))
            for name in (pattern.format(table=table) for pattern in TRIGGERS):
                cursor.execute(
                    "SELECT tgenabled FROM pg_trigger WHERE tgrelid = %s::regclass AND tgname = %s",
                    [table, name],
                )
                row = cursor.fetchone()
                if row is None:
                    findings.append(Finding(True, f"trigger {name} on {table} is missing"))
                elif row[0] not in ("O", "A"):
                    findings.append(Finding(True, f"trigger {name} on {table} is disabled"))
        cursor.execute(
            "SELECT pg_has_role(current_user, proowner, 'MEMBER') FROM pg_proc "
            "WHERE oid = to_regprocedure(%s)",
            [FUNCTION],
        )
        row = cursor.fetchone()
        if row is None:
            findings.append(Finding(True, f"function {FUNCTION} is missing"))
        elif row[0]:
            findings.append(
                Finding(True, f"role {role} owns function {FUNCTION}: it can replace it")
            )
    return role, findings
