"""Crash consistency: a failure between a change and its audit event leaves neither behind.

Every service that changes state records its event in the same transaction. Here a failure is
injected (1) where the event is saved, (2) just after the event was saved, and (3) inside the
service around the event (the new key of a rotation, the delete of a removal). Afterwards the
database is exactly as before: no change, no event, no e-mail, and the plaintext of a key or an
invitation that was generated on the way exists nowhere. ``transaction=True``: the services'
own transactions are the outermost ones, as in production.
"""

import secrets
from datetime import timedelta

import pytest
from django.core import mail
from django.test import override_settings
from django.utils import timezone

import audit.services
from accounts import mfa
from accounts import services as account_services
from accounts.models import BackupCode, Invitation, Membership, ServiceID, Tenant
from accounts.principals import Principal
from audit.models import AuditEvent
from keys import services as key_services
from keys import tokens
from keys.models import ApiKey
from tests import factories
from webhooks import services as webhook_services
from webhooks.events import EVENTS, FROM_AUDIT
from webhooks.models import WebhookDelivery

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_password_hasher"),
]


class InjectedFailure(Exception):
    """The crash: anything that is not a ValidationError or PermissionDenied."""


def _snapshot() -> dict:
    """Everything a service of this suite could change, and every audit event."""
    return {
        "keys": sorted(
            ApiKey.objects.values_list(
                "id", "name", "revoked_at", "rotated_at", "expires_at", "digest", "scopes"
            )
        ),
        "members": sorted(Membership.objects.values_list("id", "user_id", "tenant_id", "role")),
        "invitations": sorted(Invitation.objects.values_list("id", "email", "digest")),
        "service_ids": sorted(ServiceID.objects.values_list("id", "name", "role", "is_active")),
        "tenants": sorted(
            Tenant.objects.values_list(
                "id",
                "max_key_lifetime_days",
                "default_key_lifetime_days",
                "allow_non_expiring_keys",
                "allowed_ips",
                "key_rate",
            )
        ),
        "backup_codes": sorted(BackupCode.objects.values_list("id", "digest", "used_at")),
        "events": sorted(AuditEvent.objects.values_list("id", flat=True)),
        "outbox": sorted(WebhookDelivery.objects.values_list("id", "audit_event_id", "event_type")),
    }


class Secrets:
    """Every key plaintext and invitation secret generated while the service runs."""

    def __init__(self, monkeypatch):
        self.values: list[str] = []
        generate, token_urlsafe = tokens.generate, secrets.token_urlsafe

        def _generate(kind):
            self.values.append(generate(kind))
            return self.values[-1]

        def _token_urlsafe(nbytes=None):
            self.values.append(token_urlsafe(nbytes))
            return self.values[-1]

        monkeypatch.setattr(tokens, "generate", _generate)
        monkeypatch.setattr(secrets, "token_urlsafe", _token_urlsafe)


@pytest.fixture
def world(tenant, owner):
    owner_membership = tenant.memberships.select_related("tenant", "user").get(role="owner")
    # A webhook endpoint subscribed to every event: each key or member event below also writes
    # an outbox row, which must commit with its event or vanish with it.
    with override_settings(KEYWARD_WEBHOOKS_ALLOW_LOOPBACK=True, KEYWARD_WEBHOOKS_ALLOW_HTTP=True):
        webhook_services.endpoint_create(
            actor=Principal.of_membership(owner_membership),
            url="http://127.0.0.1:9/hook",
            events=list(EVENTS),
        )
    member = factories.add_member(tenant, "member")
    key, _ = factories.make_api_key(owner_membership, name="old", scopes=["keys:read"])
    mfa.backup_codes_generate(user=owner)
    return {
        "service_id": factories.make_service_id(tenant, "ci-bot"),
        "tenant": tenant,
        "owner": owner,
        "owner_membership": owner_membership,
        "principal": Principal.of_membership(owner_membership),
        "member": member,
        "key": key,
    }


def _issue(w):
    return key_services.key_issue(
        actor=w["principal"],
        tenant=w["tenant"],
        owner=w["owner"],
        name="new",
        scopes=["keys:read"],
        expires_at=timezone.now() + timedelta(days=7),
    )


# Each service, called the way the portal calls it.
SERVICES = {
    "key issue": _issue,
    "key rotate": lambda w: key_services.key_rotate(actor=w["principal"], key=w["key"]),
    "key rotate with grace": lambda w: key_services.key_rotate(
        actor=w["principal"], key=w["key"], grace="24h"
    ),
    "key revoke": lambda w: key_services.key_revoke(actor=w["principal"], key=w["key"]),
    "member role change": lambda w: account_services.membership_change_role(
        actor=Principal.of_membership(w["owner_membership"]), target=w["member"], role="admin"
    ),
    "member removal": lambda w: account_services.membership_remove(
        actor=Principal.of_membership(w["owner_membership"]), target=w["member"]
    ),
    "invitation": lambda w: account_services.invitation_create(
        actor=Principal.of_membership(w["owner_membership"]), email="new@example.com", role="member"
    ),
    "service ID create": lambda w: account_services.service_id_create(
        actor=Principal.of_membership(w["owner_membership"]), name="deploy-bot", role="member"
    ),
    "service ID update": lambda w: account_services.service_id_update(
        actor=Principal.of_membership(w["owner_membership"]),
        service_id=w["service_id"],
        role="auditor",
    ),
    "tenant policy update": lambda w: account_services.tenant_policy_update(
        actor=Principal.of_membership(w["owner_membership"]),
        max_key_lifetime_days=90,
        allowed_ips=["10.0.0.0/8"],
        key_rate="10/min",
    ),
    "backup codes": lambda w: mfa.backup_codes_generate(user=w["owner"]),
}


def _fail_saving_the_event(monkeypatch):
    def save(self, *args, **kwargs):
        raise InjectedFailure(f"crash while saving {self.action}")

    monkeypatch.setattr(AuditEvent, "save", save)


def _fail_after_the_event(monkeypatch):
    record = audit.services.record

    def record_then_crash(action, **kwargs):
        event = record(action, **kwargs)
        assert event.pk is not None  # the event row exists in the transaction...
        raise InjectedFailure(f"crash after {action}")  # ...and must vanish with it

    monkeypatch.setattr(audit.services, "record", record_then_crash)


INJECTIONS = {
    "while saving the event": _fail_saving_the_event,
    "after the event": _fail_after_the_event,
}


def _assert_nothing_left_behind(before: dict, generated: Secrets, caplog) -> None:
    assert _snapshot() == before
    assert mail.outbox == []  # e.g. no invitation link: the e-mail goes out only on commit
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for value in generated.values:
        assert not ApiKey.objects.filter(digest=tokens.digest(value)).exists()
        assert value not in logged


@pytest.mark.parametrize("injection", INJECTIONS)
@pytest.mark.parametrize("service", SERVICES)
def test_a_crash_around_the_audit_event_leaves_neither_change_nor_event(
    world, service, injection, monkeypatch, caplog
):
    call = SERVICES[service]
    before = _snapshot()
    generated = Secrets(monkeypatch)
    INJECTIONS[injection](monkeypatch)

    with pytest.raises(InjectedFailure):
        returned = call(world)
        pytest.fail(f"the service returned {returned!r}")  # pragma: no cover

    _assert_nothing_left_behind(before, generated, caplog)
    if service.startswith(("key issue", "key rotate", "invitation")):
        assert generated.values, "the injection came before any secret was made"


@pytest.mark.parametrize("service", SERVICES)
def test_without_a_crash_each_service_changes_state_with_its_event(world, service, monkeypatch):
    # The control for the test above: the same calls do change state, with events.
    call = SERVICES[service]
    before = _snapshot()
    call(world)
    after = _snapshot()
    assert after != before
    assert len(after["events"]) > len(before["events"])


def test_a_crash_saving_the_successor_of_a_rotated_key_leaves_the_old_key_as_it_was(
    world, monkeypatch, caplog
):
    # Inside rotate: the old key is already marked rotated (and revoked) when the new key's row
    # is written; the crash must undo that too, so the old key keeps working.
    before = _snapshot()
    generated = Secrets(monkeypatch)
    save = ApiKey.save

    def save_unless_new(self, *args, **kwargs):
        if self.pk is None:
            raise InjectedFailure("crash saving the successor")
        return save(self, *args, **kwargs)

    monkeypatch.setattr(ApiKey, "save", save_unless_new)
    with pytest.raises(InjectedFailure):
        key_services.key_rotate(actor=world["principal"], key=world["key"])
    monkeypatch.undo()

    _assert_nothing_left_behind(before, generated, caplog)
    assert len(generated.values) == 1
    old = ApiKey.objects.get(pk=world["key"].pk)
    assert (old.revoked_at, old.rotated_at) == (None, None)


def test_a_crash_removing_a_member_after_the_event_leaves_the_member_and_no_event(
    world, monkeypatch, caplog
):
    # membership_remove records member.removed first, then deletes.
    before = _snapshot()
    generated = Secrets(monkeypatch)

    def delete(self, *args, **kwargs):
        raise InjectedFailure("crash deleting the membership")

    monkeypatch.setattr(Membership, "delete", delete)
    with pytest.raises(InjectedFailure):
        account_services.membership_remove(
            actor=Principal.of_membership(world["owner_membership"]), target=world["member"]
        )
    _assert_nothing_left_behind(before, generated, caplog)


def test_a_crash_after_the_event_of_an_invitation_sends_no_link(world, monkeypatch, caplog):
    # invitation_create records member.invited, then builds the link and queues the e-mail.
    before = _snapshot()
    generated = Secrets(monkeypatch)

    def absolute_url(path):
        raise InjectedFailure("crash building the link")

    monkeypatch.setattr(account_services.members, "absolute_url", absolute_url)
    with pytest.raises(InjectedFailure):
        account_services.invitation_create(
            actor=Principal.of_membership(world["owner_membership"]),
            email="new@example.com",
            role="member",
        )
    _assert_nothing_left_behind(before, generated, caplog)
    assert len(generated.values) == 1


# --- The webhook outbox ------------------------------------------------------------------------

# The services above whose event a webhook reports.
WEBHOOK_SERVICES = ["key issue", "key rotate", "key revoke", "member removal"]


def _assert_outbox_matches_events() -> None:
    """No outbox row without its event, and no reported event without its outbox row."""
    reported = set(
        AuditEvent.objects.filter(action__in=FROM_AUDIT, outcome="success").values_list(
            "id", flat=True
        )
    )
    outbox = list(WebhookDelivery.objects.values_list("audit_event_id", flat=True))
    assert len(outbox) == len(set(outbox))  # one endpoint: one row per event
    assert set(outbox) == reported


@pytest.mark.parametrize("service", WEBHOOK_SERVICES)
def test_a_crash_writing_the_outbox_row_leaves_neither_change_nor_event(
    world, service, monkeypatch, caplog
):
    before = _snapshot()
    generated = Secrets(monkeypatch)

    def insert(*args, **kwargs):
        raise InjectedFailure("crash writing the outbox row")

    # The row is written by save() (on commit enqueue) or, with the database task backend, by
    # one statement with its task row: the crash is injected into both.
    monkeypatch.setattr(WebhookDelivery, "save", insert)
    monkeypatch.setattr(webhook_services, "_insert_with_task", insert)
    with pytest.raises(InjectedFailure):
        SERVICES[service](world)
    monkeypatch.undo()
    _assert_nothing_left_behind(before, generated, caplog)
    _assert_outbox_matches_events()


@pytest.mark.parametrize("injection", INJECTIONS)
@pytest.mark.parametrize("service", WEBHOOK_SERVICES)
def test_a_crash_around_the_event_leaves_no_outbox_row(world, service, injection, monkeypatch):
    INJECTIONS[injection](monkeypatch)
    with pytest.raises(InjectedFailure):
        SERVICES[service](world)
    monkeypatch.undo()
    _assert_outbox_matches_events()


@pytest.mark.parametrize("service", WEBHOOK_SERVICES)
def test_without_a_crash_each_reported_event_has_its_outbox_row(world, service):
    before = WebhookDelivery.objects.count()
    SERVICES[service](world)
    assert WebhookDelivery.objects.count() > before
    _assert_outbox_matches_events()
