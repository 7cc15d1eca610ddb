"""manage.py audit_check_grants (issue 13, item 6)."""

import os
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

pytestmark = pytest.mark.django_db

ROLE = f"kw_app_test_{os.getpid()}"


def test_the_postgres_superuser_can_rewrite_the_audit_tables(postgresql):
    out = StringIO()
    with pytest.raises(CommandError, match="can rewrite the audit tables") as raised:
        call_command("audit_check_grants", stdout=out)
    assert raised.value.returncode == 1
    assert "is a superuser" in out.getvalue()
    assert "owns audit_auditevent" in out.getvalue()


def _as_restricted_role(extra_grants=()):
    """Create a role granted what SECURITY.md recommends, and act as it for the rest of the
    test's transaction (the role and grants roll back with it)."""
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {ROLE} NOLOGIN")
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {ROLE}")
        cursor.execute(f"GRANT SELECT, INSERT ON audit_auditevent, audit_auditseal TO {ROLE}")
        cursor.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {ROLE}")
        for grant in extra_grants:
            cursor.execute(grant.format(role=ROLE))
        cursor.execute(f"SET LOCAL ROLE {ROLE}")


def test_a_role_with_select_and_insert_only_passes(postgresql):
    _as_restricted_role()
    out = StringIO()
    call_command("audit_check_grants", stdout=out)
    assert out.getvalue().startswith(f"OK: role {ROLE} cannot")


@pytest.mark.parametrize(
    "grant, finding",
    [
        ("GRANT UPDATE ON audit_auditevent TO {role}", "can UPDATE audit_auditevent"),
        ("GRANT DELETE ON audit_auditseal TO {role}", "can DELETE audit_auditseal"),
        ("GRANT TRUNCATE ON audit_auditevent TO {role}", "can TRUNCATE audit_auditevent"),
        ("GRANT TRIGGER ON audit_auditevent TO {role}", "can TRIGGER audit_auditevent"),
        ("GRANT postgres TO {role}", "owns audit_auditevent"),
    ],
)
def test_each_way_to_rewrite_is_named(postgresql, grant, finding):
    _as_restricted_role([grant])
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("audit_check_grants", stdout=out)
    assert f"FAIL: role {ROLE} {finding}" in out.getvalue()


def test_a_disabled_trigger_is_named(postgresql):
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE audit_auditseal DISABLE TRIGGER audit_auditseal_no_change")
    _as_restricted_role()
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("audit_check_grants", stdout=out)
    assert "FAIL: trigger audit_auditseal_no_change on audit_auditseal is disabled" in (
        out.getvalue()
    )


def test_sqlite_cannot_be_checked(monkeypatch):
    monkeypatch.setattr(connection, "vendor", "sqlite")  # the same answer, on either database
    with pytest.raises(CommandError, match="Only PostgreSQL can be checked") as raised:
        call_command("audit_check_grants", stdout=StringIO())
    assert raised.value.returncode == 2
