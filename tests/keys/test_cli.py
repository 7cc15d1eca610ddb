"""Operator commands: create_service_id, issue_service_key, revoke_key; each audited as CLI."""

import io
import json
import logging

import pytest
from django.core.management import call_command, get_commands
from django.core.management.base import CommandError

from accounts import services as account_services
from accounts.models import ServiceID, Tenant
from audit.models import AuditEvent
from audit.services import Actor
from keys import services, tokens
from keys.management.commands import issue_service_key as issue_command
from keys.management.commands import revoke_key as revoke_command
from keys.management.commands.issue_service_key import BAD_EXPIRES_IN
from keys.management.errors import NO_SUCH_TENANT
from keys.models import ApiKey
from keys.scopes import NO_SCOPES, UNKNOWN_SCOPE
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def _run(name: str, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def bot(tenant):
    return factories.make_service_id(tenant, "deploy-bot", role="admin")


class _NoStdin(io.StringIO):
    def read(self, *args):
        raise AssertionError("a command read stdin")

    readline = read


def _issue_args(**overrides) -> list[str]:
    options = {
        "--tenant": "acme",
        "--service-id": "deploy-bot",
        "--name": "ci",
        "--scopes": "keys:read,members:read",
        "--expires-in": "30d",
    } | overrides
    return [part for pair in options.items() for part in pair]


# --- issue_service_key ---------------------------------------------------------------------


def test_issue_service_key_prints_exactly_the_token_and_it_works(
    api_client, bot, monkeypatch, caplog
):
    monkeypatch.setattr("sys.stdin", _NoStdin())
    args = _issue_args()
    with caplog.at_level(logging.DEBUG):
        out, err = _run("issue_service_key", *args)
    token = out.removesuffix("\n")
    assert out == token + "\n" and "\n" not in token
    assert tokens.parse(token).kind is tokens.Kind.SERVICE
    assert token not in err and token not in " ".join(args)
    assert "shown once" in err
    assert token not in caplog.text
    whoami = api_client.get("/api/v1/whoami/", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert whoami["principal"]["label"] == "service:deploy-bot"
    assert whoami["key"]["scopes"] == ["keys:read", "members:read"]
    event = AuditEvent.objects.get(action="key.issued")
    assert (event.actor_kind, event.actor_label) == ("cli", "manage.py issue_service_key")
    assert token not in json.dumps(list(AuditEvent.objects.values_list()), default=str)


def test_issue_service_key_accepts_hours_and_allowed_networks(bot):
    out, _ = _run(
        "issue_service_key", *_issue_args(**{"--expires-in": "12h"}), "--allowed-ips", "10.0.0.0/8"
    )
    key = ApiKey.objects.get(service_id=bot)
    assert key.allowed_ips == ["10.0.0.0/8"]
    assert 11.9 * 3600 < (key.expires_at - key.created_at).total_seconds() <= 12 * 3600


def test_never_expiring_key_needs_a_tenant_that_allows_it(tenant, bot):
    with pytest.raises(CommandError, match=services.EXPIRY_REQUIRED):
        _run("issue_service_key", *_issue_args(**{"--expires-in": "never"}))
    assert not ApiKey.objects.filter(service_id=bot).exists()
    Tenant.objects.filter(pk=tenant.pk).update(allow_non_expiring_keys=True)
    _run("issue_service_key", *_issue_args(**{"--expires-in": "never"}))
    assert ApiKey.objects.get(service_id=bot).expires_at is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"--expires-in": "30"}, BAD_EXPIRES_IN),
        ({"--expires-in": "2w"}, BAD_EXPIRES_IN),
        ({"--expires-in": "0d"}, BAD_EXPIRES_IN),
        ({"--expires-in": "400d"}, services.EXPIRY_TOO_LONG % {"days": 365}),
        ({"--tenant": "nope"}, NO_SUCH_TENANT % "nope"),
        ({"--service-id": "ghost"}, issue_command.NO_SUCH_SERVICE_ID % ("ghost", "acme")),
        (
            {"--service-id": "owner@acme.example"},  # never a person
            issue_command.NO_SUCH_SERVICE_ID % ("owner@acme.example", "acme"),
        ),
        ({"--scopes": "keys:read,keys:nuke"}, UNKNOWN_SCOPE % {"scope": "keys:nuke"}),
        ({"--scopes": ""}, NO_SCOPES),
    ],
)
def test_refused_issue_is_a_command_error_with_no_key_and_no_event(bot, overrides, message):
    before = (ApiKey.objects.count(), AuditEvent.objects.count())
    with pytest.raises(CommandError) as raised:
        _run("issue_service_key", *_issue_args(**overrides))
    assert message in str(raised.value)
    assert (ApiKey.objects.count(), AuditEvent.objects.count()) == before


def test_scope_above_the_service_ids_role_is_refused(tenant):
    factories.make_service_id(tenant, "reader", role="member")
    message = services.SCOPE_ABOVE_CEILING % {"scope": "service_ids:write"}
    with pytest.raises(CommandError, match=message):
        _run(
            "issue_service_key",
            *_issue_args(**{"--service-id": "reader", "--scopes": "service_ids:write"}),
        )


def test_no_command_mints_a_persons_token():
    keys_commands = [name for name, app in get_commands().items() if app == "keys"]
    assert sorted(keys_commands) == [
        "create_service_id",
        "issue_service_key",
        "keys_approval_digest",
        "keys_maintain",
        "keyward_lookup_token",
        "keyward_scan",
        "revoke_key",
    ]


# --- create_service_id ---------------------------------------------------------------------


def test_create_service_id_creates_and_records_a_cli_event(tenant):
    out, _ = _run(
        "create_service_id",
        "--tenant",
        "acme",
        "--name",
        "ci",
        "--role",
        "member",
        "--description",
        "CI",
    )
    service_id = ServiceID.objects.get(tenant=tenant, name="ci")
    assert (service_id.role, service_id.description, service_id.created_by) == (
        "member",
        "CI",
        None,
    )
    assert "Created service ID ci" in out
    event = AuditEvent.objects.get(action="service_id.created")
    assert (event.actor_kind, event.actor_label, event.tenant_id) == (
        "cli",
        "manage.py create_service_id",
        tenant.pk,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tenant", "nope", "--name", "ci", "--role", "member"], "No tenant"),
        (["--tenant", "acme", "--name", "deploy-bot", "--role", "member"], "already exists"),
        (["--tenant", "acme", "--name", "not a slug", "--role", "member"], "name:"),
    ],
)
def test_refused_service_id_is_a_command_error_with_no_row_and_no_event(bot, args, message):
    before = (ServiceID.objects.count(), AuditEvent.objects.count())
    with pytest.raises(CommandError, match=message):
        _run("create_service_id", *args)
    assert (ServiceID.objects.count(), AuditEvent.objects.count()) == before


def test_service_id_create_by_an_operator_needs_a_tenant(tenant):
    with pytest.raises(TypeError):
        account_services.service_id_create(actor=Actor.cli("x"), name="x", role="member")


# --- revoke_key ----------------------------------------------------------------------------


def test_revoke_key_revokes_any_key_of_the_tenant_and_records_a_cli_event(tenant, member):
    key, _ = factories.make_api_key(member)
    out, _ = _run("revoke_key", "--tenant", "acme", "--key-id", str(key.pk), "--reason", "leaked")
    key.refresh_from_db()
    assert key.revoked_at is not None and key.revoked_reason == "leaked"
    assert "Revoked key" in out
    event = AuditEvent.objects.get(action="key.revoked")
    assert (event.actor_kind, event.actor_label) == ("cli", "manage.py revoke_key")


def test_revoke_key_refuses_another_tenants_key_and_a_revoked_one(tenant, member, other_tenant):
    theirs, _ = factories.make_api_key(other_tenant.memberships.get(role="owner"))
    with pytest.raises(CommandError, match=revoke_command.NO_SUCH_KEY % (theirs.pk, "acme")):
        _run("revoke_key", "--tenant", "acme", "--key-id", str(theirs.pk), "--reason", "x")
    mine, _ = factories.make_api_key(member)
    _run("revoke_key", "--tenant", "acme", "--key-id", str(mine.pk), "--reason", "x")
    before = AuditEvent.objects.count()
    with pytest.raises(CommandError, match=services.ALREADY_REVOKED):
        _run("revoke_key", "--tenant", "acme", "--key-id", str(mine.pk), "--reason", "x")
    assert AuditEvent.objects.count() == before
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
