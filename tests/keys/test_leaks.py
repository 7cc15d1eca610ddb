"""Leak reports (POST /api/v1/leaks/, signed with ECDSA P-256) and keys sent in a URL, handled
by each tenant's leak policy."""

import base64
import json

import pytest
from django.core import mail

from accounts.models import LeakPolicy, Tenant
from audit.models import AuditEvent
from keys import leaks, tokens
from keys.checks import check_leak_report_keys
from keys.models import ApiKey
from tests import factories

pytestmark = pytest.mark.django_db

URL = "/api/v1/leaks/"
KEY_ID = "scanner-1"
WHERE = {
    "type": "keyward_token",
    "url": "https://git.example/acme/app/blob/main/.env",
    "source": "content",
}


@pytest.fixture
def signer(settings):
    private_key, pem = factories.make_leak_signer()
    settings.KEYWARD_LEAK_REPORT_PUBLIC_KEYS = {KEY_ID: pem}
    return private_key


def _body(*tokens_: str, **where) -> bytes:
    return json.dumps([{"token": t, **WHERE, **where} for t in tokens_]).encode()


def _report(api_client, body: bytes, private_key=None, *, key_id: str = KEY_ID, signature=None):
    headers = {}
    if key_id:
        headers["HTTP_KEYWARD_KEY_ID"] = key_id
    if signature is None and private_key is not None:
        signature = factories.sign_leak_report(private_key, body)
    if signature:
        headers["HTTP_KEYWARD_SIGNATURE"] = signature
    return api_client.post(URL, body, content_type="application/json", **headers)


def _policy(tenant, policy: str) -> None:
    Tenant.objects.filter(pk=tenant.pk).update(leak_policy=policy)


def _usable(key: ApiKey) -> bool:
    return ApiKey.objects.get(pk=key.pk).revoked_at is None


def test_a_signed_report_revokes_the_key_under_the_default_policy(
    api_client, signer, tenant, owner, django_capture_on_commit_callbacks
):
    key, token = factories.make_api_key(owner, tenant)
    with django_capture_on_commit_callbacks(execute=True):
        response = _report(api_client, _body(token), signer)
    assert response.status_code == 200
    assert response.json() == [
        {"token_hint": key.hint, "is_true_positive": True, "action": "revoked"}
    ]
    assert token not in response.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is not None and key.revoked_reason == "found in public: content"
    event = AuditEvent.objects.get(action="key.leak_reported")
    assert (event.actor_kind, event.actor_label) == ("system", f"leak report ({KEY_ID})")
    assert event.metadata["url"] == WHERE["url"] and event.metadata["action"] == "revoked"
    assert token not in json.dumps(event.metadata) and token not in event.target_label
    revoked = AuditEvent.objects.get(action="key.revoked")
    assert revoked.actor_kind == "system" and revoked.target_id == str(key.pk)
    assert mail.outbox == []  # "revoke" does not notify


def test_notify_policy_emails_owners_and_admins_where_it_was_found_and_keeps_the_key(
    api_client, signer, tenant, owner, admin_member, member, django_capture_on_commit_callbacks
):
    _policy(tenant, LeakPolicy.NOTIFY)
    key, token = factories.make_api_key(member)
    with django_capture_on_commit_callbacks(execute=True):
        response = _report(api_client, _body(token), signer)
    assert response.json()[0] == {
        "token_hint": key.hint,
        "is_true_positive": True,
        "action": "notified",
    }
    assert _usable(key)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert sorted(message.to) == sorted([owner.email, admin_member.user.email, member.user.email])
    assert WHERE["url"] in message.body and "content" in message.body
    assert token not in message.body and token not in message.subject


def test_revoke_and_notify_policy_does_both(
    api_client, signer, tenant, owner, django_capture_on_commit_callbacks
):
    _policy(tenant, LeakPolicy.REVOKE_AND_NOTIFY)
    key, token = factories.make_api_key(owner, tenant)
    with django_capture_on_commit_callbacks(execute=True):
        response = _report(api_client, _body(token), signer)
    assert response.json()[0]["action"] == "revoked_and_notified"
    assert not _usable(key) and len(mail.outbox) == 1
    assert "Keyward revoked the key." in mail.outbox[0].body


def test_findings_follow_the_report_and_never_echo_a_token(api_client, signer, tenant, owner):
    key, token = factories.make_api_key(owner, tenant)
    revoked, revoked_token = factories.make_api_key(owner, tenant)
    _report(api_client, _body(revoked_token), signer)  # revoked by this first report
    unknown = tokens.generate(tokens.Kind.SERVICE)
    body = _body("ghp_notoursatall0123456789", unknown, token, token, revoked_token)
    response = _report(api_client, body, signer)
    assert response.status_code == 200
    assert response.json() == [
        {"token_hint": None, "is_true_positive": False, "action": "none"},
        {"token_hint": tokens.hint(unknown), "is_true_positive": False, "action": "none"},
        {"token_hint": key.hint, "is_true_positive": True, "action": "revoked"},
        {"token_hint": key.hint, "is_true_positive": True, "action": "revoked"},
        {"token_hint": revoked.hint, "is_true_positive": True, "action": "none"},
    ]
    text = response.content.decode()
    assert all(t not in text for t in (token, revoked_token, unknown, "ghp_notoursatall"))
    # One event per Keyward key reported (the duplicate is handled once).
    assert AuditEvent.objects.filter(action="key.leak_reported").count() == 3


def test_a_service_keys_leak_is_handled_by_its_tenant(api_client, signer, tenant):
    service_id = factories.make_service_id(tenant)
    key, token = factories.make_api_key(service_id)
    assert _report(api_client, _body(token), signer).json()[0]["action"] == "revoked"
    assert not _usable(key)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("unsigned", "unsigned"),
        ("no key id", "unsigned"),
        ("unknown key id", "unknown_key_id"),
        ("signature of another body", "bad_signature"),
        ("signed by another key", "bad_signature"),
        ("not base64", "bad_signature"),
        ("not a DER signature", "bad_signature"),
    ],
)
def test_a_badly_signed_report_is_401_audited_and_changes_nothing(
    api_client, signer, tenant, owner, case, reason
):
    key, token = factories.make_api_key(owner, tenant)
    body = _body(token)
    other_key, _ = factories.make_leak_signer()
    kwargs = {
        "unsigned": {"signature": ""},
        "no key id": {"key_id": "", "signature": factories.sign_leak_report(signer, body)},
        "unknown key id": {"key_id": "someone-else"},
        "signature of another body": {"signature": factories.sign_leak_report(signer, b"[]")},
        "signed by another key": {"signature": factories.sign_leak_report(other_key, body)},
        "not base64": {"signature": "%%%not base64%%%"},
        "not a DER signature": {"signature": base64.b64encode(b"x" * 64).decode()},
    }[case]
    private_key = None if case == "unsigned" else signer
    response = _report(api_client, body, private_key, **kwargs)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"
    assert "WWW-Authenticate" in response
    assert _usable(key)
    event = AuditEvent.objects.get(action="key.leak_report_refused")
    assert (event.actor_kind, event.outcome, event.metadata["reason"]) == (
        "anonymous",
        "denied",
        reason,
    )
    assert not AuditEvent.objects.filter(action__in=["key.leak_reported", "key.revoked"]).exists()
    assert token not in json.dumps(event.metadata)


def test_a_bearer_key_does_not_authenticate_a_report(api_client, signer, tenant, owner):
    key, token = factories.make_api_key(owner, tenant)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = api_client.post(URL, _body(token), content_type="application/json")
    assert response.status_code == 401 and _usable(key)


def test_refused_reports_are_throttled_per_address_without_more_events(
    api_client, signer, settings
):
    settings.KEYWARD_FAILED_AUTH_RATE = "2/min"
    statuses = [_report(api_client, b"[]", key_id="").status_code for _ in range(4)]
    assert statuses == [401, 401, 429, 429]
    assert AuditEvent.objects.filter(action="key.leak_report_refused").count() == 2


def test_a_body_over_one_mebibyte_is_413(api_client, signer):
    body = json.dumps([{"token": "x" * 1000, "url": "u"}] * 1100).encode()
    assert len(body) > leaks.MAX_BODY_BYTES
    response = _report(api_client, body, signer)
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"


def test_more_than_a_thousand_tokens_is_400(api_client, signer):
    body = json.dumps([{"token": "t"}] * 1001).encode()
    response = _report(api_client, body, signer)
    assert response.status_code == 400
    assert response.json() == {"code": "too_many_tokens", "detail": leaks.TOO_MANY}


@pytest.mark.parametrize("body", [b"{}", b"not json", b'[{"url": "x"}]', b"[1]", b'[{"token": 5}]'])
def test_a_malformed_report_is_400_with_a_code(api_client, signer, body):
    response = _report(api_client, body, signer)
    assert response.status_code == 400 and response.json()["code"] == "invalid"


def test_the_check_refuses_a_public_key_that_is_not_p256(settings):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    pem = p384.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    settings.KEYWARD_LEAK_REPORT_PUBLIC_KEYS = {"a": pem, "b": "garbage"}
    assert [e.id for e in check_leak_report_keys(None)] == ["keyward.E007", "keyward.E007"]
    _, good = factories.make_leak_signer()
    settings.KEYWARD_LEAK_REPORT_PUBLIC_KEYS = {"a": good}
    assert check_leak_report_keys(None) == []


# --- A key sent in a URL query string is exposed: same policy -----------------------------


def test_a_key_sent_in_the_url_is_revoked_by_the_default_policy(api_client, tenant, owner):
    key, token = factories.make_api_key(owner, tenant)
    response = api_client.get(f"/api/v1/whoami/?access_token={token}")
    assert response.status_code == 400
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert key.revoked_reason.startswith("found in public: Keyward API: key sent in a URL")
    assert AuditEvent.objects.filter(action="key.exposed", target_id=str(key.pk)).exists()
    revoked = AuditEvent.objects.get(action="key.revoked")
    assert (revoked.actor_kind, revoked.actor_label) == ("system", "leak policy")


def test_a_key_sent_in_the_url_under_notify_policy_mails_once_an_hour(
    api_client, tenant, owner, django_capture_on_commit_callbacks
):
    _policy(tenant, LeakPolicy.NOTIFY)
    key, token = factories.make_api_key(owner, tenant)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            assert api_client.get(f"/api/v1/keys/?access_token={token}").status_code == 400
    assert _usable(key)
    assert len(mail.outbox) == 1
    assert "/api/v1/keys/" in mail.outbox[0].body and token not in mail.outbox[0].body
