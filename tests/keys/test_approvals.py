"""Key approvals (issue 18, item 14): the tenant's policy chooses which new keys wait; a pending
key answers 401 pending_approval until someone other than its requester approves it with sudo
and a reason; the requester is e-mailed; approvers get a queue and a daily digest; keys pending
too long are denied by the lifecycle job; every step is audited."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts.models import KeyApproval
from accounts.principals import Principal
from audit.models import AuditEvent
from keys import services
from keys.models import Approval, KeyStatus
from tests import factories

pytestmark = pytest.mark.django_db

WHOAMI = "/api/v1/whoami/"


def _policy(tenant, approval, default_scopes=(), days=7):
    tenant.key_approval = approval
    tenant.approval_default_scopes = list(default_scopes)
    tenant.approval_expire_days = days
    tenant.save()


@pytest.fixture
def alice(tenant):
    return factories.add_member(tenant, "member")


@pytest.fixture
def pending(tenant, alice, django_capture_on_commit_callbacks):
    _policy(tenant, KeyApproval.ALL)
    with django_capture_on_commit_callbacks(execute=True):
        key, token = factories.make_api_key(alice, name="needs approval")
    return key, token


def _p(membership):
    return Principal.of_membership(membership)


@pytest.mark.parametrize(
    ("policy", "service", "scopes", "needed"),
    [
        (KeyApproval.NONE, True, ["keys:read"], False),
        (KeyApproval.ALL, False, ["keys:read"], True),
        (KeyApproval.SERVICE, True, ["keys:read"], True),
        (KeyApproval.SERVICE, False, ["keys:read"], False),
        (KeyApproval.OUTSIDE_DEFAULT, False, ["keys:read"], False),
        (KeyApproval.OUTSIDE_DEFAULT, False, ["keys:read", "members:read"], True),
    ],
)
def test_the_policy_chooses_which_keys_wait(tenant, policy, service, scopes, needed):
    _policy(tenant, policy, ["keys:read"])
    assert services.approval_needed(tenant, service=service, scopes=scopes) is needed


def test_a_pending_key_is_issued_audited_and_answers_401_pending_approval(client, pending, owner):
    key, token = pending
    key.refresh_from_db()
    assert key.approval == Approval.PENDING and key.status() == KeyStatus.PENDING
    assert AuditEvent.objects.filter(action="key.approval_requested", target_id=str(key.pk))
    assert any(owner.email in m.to for m in mail.outbox)  # the approvers are told
    assert token not in "".join(m.body for m in mail.outbox)
    response = client.get(WHOAMI, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401
    assert response.json()["code"] == "pending_approval"
    denied = AuditEvent.objects.get(action="api.denied", target_id=str(key.pk))
    assert denied.metadata["reason"] == "pending_approval"


def test_approval_needs_a_reason_and_someone_else(tenant, alice, pending, admin_member):
    key, _ = pending
    with pytest.raises(PermissionDenied):
        services.key_approve(actor=_p(alice), key=key, reason="mine")
    # An admin who asked for a key of their own cannot approve it either.
    own, _ = factories.make_api_key(admin_member, name="admin's")
    with pytest.raises(PermissionDenied, match="Someone other"):
        services.key_approve(actor=_p(admin_member), key=own, reason="looks fine")
    with pytest.raises(ValidationError):
        services.key_approve(actor=_p(admin_member), key=key, reason="  ")
    key.refresh_from_db()
    assert key.approval == Approval.PENDING
    assert not AuditEvent.objects.filter(action="key.approved").exists()


def test_an_approved_key_works_and_the_requester_is_told(
    client, tenant, alice, pending, admin_member, django_capture_on_commit_callbacks
):
    key, token = pending
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.key_approve(actor=_p(admin_member), key=key, reason="needed for CI")
    key.refresh_from_db()
    assert key.approval == Approval.APPROVED and key.approval_decided_by == admin_member.user
    event = AuditEvent.objects.get(action="key.approved", target_id=str(key.pk))
    assert event.metadata["reason"] == "needed for CI"
    assert [m.to for m in mail.outbox] == [[alice.user.email]]
    assert "approved" in mail.outbox[0].subject
    assert client.get(WHOAMI, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    with pytest.raises(ValidationError):  # decided once
        services.key_deny(actor=_p(admin_member), key=key, reason="changed my mind")


def test_a_denied_key_is_revoked_for_good(client, alice, pending, owner, tenant):
    key, token = pending
    owner_membership = tenant.memberships.get(user=owner)
    services.key_deny(actor=_p(owner_membership), key=key, reason="too broad")
    key.refresh_from_db()
    assert key.approval == Approval.DENIED and key.revoked_at is not None
    assert AuditEvent.objects.get(action="key.approval_denied").metadata["reason"] == "too broad"
    assert client.get(WHOAMI, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401


def test_members_cannot_approve(tenant, pending):
    other = factories.add_member(tenant, "member")
    with pytest.raises(PermissionDenied):
        services.key_approve(actor=_p(other), key=pending[0], reason="sure")


def test_the_lifecycle_job_denies_keys_pending_too_long(pending, tenant):
    key, _ = pending
    assert services.keys_deny_stale_approvals(now=timezone.now() + timedelta(days=6)) == 0
    report = services.keys_maintain(now=timezone.now() + timedelta(days=7, minutes=1))
    assert report.denied == 1
    key.refresh_from_db()
    assert key.approval == Approval.DENIED and key.revoked_at is not None
    event = AuditEvent.objects.get(action="key.approval_denied")
    assert event.metadata["automatic"] and event.actor_kind == "system"


def test_the_daily_digest_lists_pending_keys_to_approvers(
    pending, owner, admin_member, capsys, django_capture_on_commit_callbacks
):
    key, _ = pending
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("keys_approval_digest")
    assert "1 digest(s) sent" in capsys.readouterr().out
    digest = [m for m in mail.outbox if "waiting for approval" in m.subject]
    assert len(digest) == 1
    assert set(digest[0].to) == {owner.email, admin_member.user.email}
    assert key.hint in digest[0].body and "/keys/approvals/" in digest[0].body
    assert AuditEvent.objects.filter(action="key.approval_digest_sent").count() == 1


def test_no_digest_without_pending_keys(tenant, capsys):
    mail.outbox.clear()
    call_command("keys_approval_digest")
    assert mail.outbox == []
    assert not AuditEvent.objects.filter(action="key.approval_digest_sent").exists()


def test_a_pending_key_cannot_be_rotated_or_edited(alice, pending):
    key, _ = pending
    with pytest.raises(ValidationError):
        services.key_rotate(actor=_p(alice), key=key, grace="now")
    with pytest.raises(ValidationError):
        services.key_update(actor=_p(alice), key=key, values={"name": "x"}, sudo=True)


# --- Pages -----------------------------------------------------------------------------------


def test_the_queue_and_the_decision_page(client, tenant, pending, admin_member):
    key, _ = pending
    factories.verify_session(client, admin_member.user)
    queue = client.get(reverse("keys:approvals", kwargs={"slug": tenant.slug}))
    assert queue.status_code == 200 and key.hint in queue.content.decode()
    url = reverse("keys:approval_decide", kwargs={"slug": tenant.slug, "pk": key.pk})
    assert client.post(url, {"decision": "approve", "reason": ""}).status_code == 400
    response = client.post(url, {"decision": "approve", "reason": "ok for CI"})
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.approval == Approval.APPROVED
    decided = client.get(url)  # no longer pending: back to the key's page, with a word
    assert decided.status_code == 302 and decided.url.endswith(f"/keys/{key.pk}/")


def test_the_decision_page_needs_sudo(client, tenant, pending, admin_member):
    key, _ = pending
    factories.verify_session(client, admin_member.user, sudo=False)
    url = reverse("keys:approval_decide", kwargs={"slug": tenant.slug, "pk": key.pk})
    response = client.post(url, {"decision": "approve", "reason": "ok"})
    assert response.status_code == 302 and "/account/sudo/" in response.url
    key.refresh_from_db()
    assert key.approval == Approval.PENDING


def test_the_requester_cannot_decide_on_the_page(client, tenant, admin_member):
    _policy(tenant, KeyApproval.ALL)
    own, _ = factories.make_api_key(admin_member, name="mine")
    factories.verify_session(client, admin_member.user)
    url = reverse("keys:approval_decide", kwargs={"slug": tenant.slug, "pk": own.pk})
    response = client.post(url, {"decision": "approve", "reason": "trust me"})
    assert response.status_code == 400
    assert services.FOUR_EYES in response.content.decode()
    own.refresh_from_db()
    assert own.approval == Approval.PENDING


def test_members_cannot_see_the_queue_and_other_tenants_get_404(
    client, tenant, pending, other_tenant
):
    member = factories.add_member(tenant, "member")
    factories.verify_session(client, member.user)
    assert client.get(reverse("keys:approvals", kwargs={"slug": tenant.slug})).status_code == 403
    stranger = factories.add_member(other_tenant, "owner")
    factories.verify_session(client, stranger.user)
    url = reverse("keys:approval_decide", kwargs={"slug": other_tenant.slug, "pk": pending[0].pk})
    assert client.get(url).status_code == 404


def test_the_policy_page_sets_approval_with_sudo_and_audit(client, tenant, owner):
    factories.verify_session(client, owner)
    url = reverse("keys:policy", kwargs={"slug": tenant.slug})
    page = client.get(url).content.decode()
    assert "Keys that wait for approval" in page
    data = {
        "max_key_lifetime_days": 365,
        "default_key_lifetime_days": 30,
        "revoke_unused_after_days": 365,
        "leak_policy": "revoke",
        "allowed_ips": "",
        "key_rate": "",
        "key_approval": "outside_default",
        "approval_default_scopes": ["keys:read"],
        "approval_expire_days": 3,
    }
    assert client.post(url, data).status_code == 302
    tenant.refresh_from_db()
    assert tenant.key_approval == "outside_default"
    assert tenant.approval_default_scopes == ["keys:read"] and tenant.approval_expire_days == 3
    event = AuditEvent.objects.filter(action="tenant.policy_changed").latest("id")
    assert event.metadata["changed"]["key_approval"] == ["none", "outside_default"]
    bad = dict(data, approval_default_scopes=["nope:x"], approval_expire_days=0)
    assert client.post(url, bad).status_code == 400
