"""Operators look up a token for incident response: keyward_lookup_token (stdin only) and the
admin's "Look up a token" page. Both are audited with the token's hint, never the token."""

import json
from io import StringIO

import pytest
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import Actor
from keys import services, tokens
from keys.management.commands.keyward_lookup_token import TOKEN_IN_ARGV
from keys.models import ApiKey
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def _lookup(text: str) -> str:
    out = StringIO()
    call_command("keyward_lookup_token", stdin=StringIO(text), stdout=out)
    return out.getvalue()


def _event() -> AuditEvent:
    return AuditEvent.objects.get(action="key.looked_up")


def test_a_token_on_stdin_prints_its_key_owner_tenant_status_and_last_use(tenant, owner):
    key, token = factories.make_api_key(owner, tenant, scopes=["keys:read"])
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now(), last_used_ip="192.0.2.4")
    out = _lookup(f"  {token}\n")
    assert f"{key.name} ({key.hint}), id {key.pk}" in out
    assert "personal access token" in out
    assert "acme (Acme)" in out and owner.email in out
    assert "Status:    active" in out and "keys:read" in out
    assert "from 192.0.2.4" in out
    assert token not in out
    event = _event()
    assert (event.actor_kind, event.actor_label) == ("cli", "manage.py keyward_lookup_token")
    assert (event.tenant_id, event.target_id, event.outcome) == (tenant.pk, str(key.pk), "success")
    assert event.metadata == {"result": "found", "hint": key.hint}
    assert token not in json.dumps(event.metadata)


def test_a_revoked_service_key_shows_its_revocation(tenant):
    service_id = factories.make_service_id(tenant)
    key, token = factories.make_api_key(service_id)
    services.key_revoke(actor=Actor.cli("test"), key=key, reason="leaked in CI log")
    out = _lookup(token)
    assert "service key" in out and "service ID deploy-bot" in out
    assert "Status:    revoked" in out and "leaked in CI log" in out


def test_a_string_failing_the_checksum_is_not_a_keyward_key_with_no_key_query(tenant, owner):
    _, token = factories.make_api_key(owner, tenant)
    broken = token[:-1] + ("A" if token[-1] != "A" else "B")
    with CaptureQueriesContext(connection) as queries, pytest.raises(CommandError) as error:
        _lookup(broken)
    assert "not a Keyward key" in str(error.value) and broken not in str(error.value)
    assert not any("keys_apikey" in q["sql"] for q in queries.captured_queries)
    assert _event().metadata == {"result": "not_a_keyward_key", "hint": ""}


def test_a_well_formed_unknown_token_is_no_such_key(db):
    token = tokens.generate(tokens.Kind.PERSONAL)
    with pytest.raises(CommandError) as error:
        _lookup(token)
    assert "no such key" in str(error.value) and token not in str(error.value)
    event = _event()
    assert event.outcome == "failure" and event.metadata["hint"] == tokens.hint(token)


def test_nothing_on_stdin_is_an_error(db):
    with pytest.raises(CommandError, match="standard input"):
        _lookup("\n")
    assert not AuditEvent.objects.filter(action="key.looked_up").exists()


def test_a_token_in_the_arguments_is_refused_without_being_repeated(tenant, owner):
    _, token = factories.make_api_key(owner, tenant)
    with pytest.raises(CommandError) as error:
        call_command("keyward_lookup_token", token, stdin=StringIO(""))
    assert str(error.value) == TOKEN_IN_ARGV
    assert not AuditEvent.objects.filter(action="key.looked_up").exists()


@pytest.mark.parametrize("argv_form", ["{token}", "--token={token}", "-t{token}"])
def test_the_command_line_refuses_a_token_before_parsing_it(tenant, owner, capsys, argv_form):
    _, token = factories.make_api_key(owner, tenant)
    utility = ManagementUtility(
        ["manage.py", "keyward_lookup_token", argv_form.format(token=token)]
    )
    with pytest.raises(SystemExit) as exit_:
        utility.execute()
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert TOKEN_IN_ARGV in captured.err
    assert token not in captured.err and token not in captured.out


# --- The admin's look-up page -------------------------------------------------------------


def _operator(client, *, verified: bool = True):
    operator = factories.make_user("ops@example.com")
    operator.is_staff = operator.is_superuser = True
    operator.save(update_fields=["is_staff", "is_superuser"])
    if verified:
        factories.verify_session(client, operator)
    else:
        client.force_login(operator)
    return operator


LOOKUP = "admin:keys_apikey_lookup"


def test_an_operator_looks_up_a_pasted_token_in_the_admin(client, tenant, owner):
    key, token = factories.make_api_key(owner, tenant)
    operator = _operator(client)
    changelist = client.get(reverse("admin:keys_apikey_changelist")).content.decode()
    assert reverse(LOOKUP) in changelist
    assert client.get(reverse(LOOKUP)).status_code == 200
    response = client.post(reverse(LOOKUP), {"token": token})
    html = response.content.decode()
    assert response.status_code == 200
    assert key.name in html and owner.email in html and "acme (Acme)" in html
    assert token not in html
    assert "no-store" in response["Cache-Control"]
    event = _event()
    assert (event.actor_kind, event.actor_id) == ("operator", str(operator.pk))
    assert event.metadata == {"result": "found", "hint": key.hint}


def test_the_admin_lookup_says_when_a_string_is_not_a_key(client):
    _operator(client)
    html = client.post(reverse(LOOKUP), {"token": "hello world"}).content.decode()
    assert "Not a Keyward key" in html


def test_the_admin_lookup_needs_a_verified_operator(client, tenant, owner):
    _, token = factories.make_api_key(owner, tenant)
    _operator(client, verified=False)
    response = client.post(reverse(LOOKUP), {"token": token})
    assert response.status_code == 302
    factories.verify_session(client, owner)  # verified, but not staff
    assert client.post(reverse(LOOKUP), {"token": token}).status_code in (302, 403)
    assert not AuditEvent.objects.filter(action="key.looked_up").exists()
