"""GitHub's secret scanning partner format on the leak endpoint: signed with a key from a
document shaped like GitHub's meta/public_keys/secret_scanning, answered with GitHub's feedback."""

import hashlib
import json

import pytest
from django.core import mail
from django.core.cache import cache

from accounts.models import LeakPolicy, Tenant
from audit.models import AuditEvent
from keys import leaks, tokens
from keys.models import ApiKey
from tests import factories

pytestmark = pytest.mark.django_db

URL = "/api/v1/leaks/"
KEY_ID = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a"
OLD_KEY_ID = "bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c"
WHERE = {"type": "keyward_personal_token", "url": "https://github.com/o/r/blob/x/.env"}


def _document(*entries) -> dict:
    return {
        "public_keys": [
            {"key_identifier": key_id, "key": pem, "is_current": current}
            for key_id, pem, current in entries
        ]
    }


@pytest.fixture
def github(settings, tmp_path):
    """GitHub's signer: its private key, and its public keys in a document file Keyward reads."""
    private_key, pem = factories.make_leak_signer()
    _, old_pem = factories.make_leak_signer()
    document = tmp_path / "secret_scanning.json"
    document.write_text(json.dumps(_document((OLD_KEY_ID, old_pem, False), (KEY_ID, pem, True))))
    settings.KEYWARD_LEAK_REPORT_GITHUB_KEYS = str(document)
    return private_key


def _body(*tokens_: str) -> bytes:
    return json.dumps([{"token": t, **WHERE, "source": "content"} for t in tokens_]).encode()


def _report(api_client, body: bytes, private_key=None, *, key_id=KEY_ID, signature=None):
    headers = {"HTTP_GITHUB_PUBLIC_KEY_IDENTIFIER": key_id} if key_id else {}
    if signature is None and private_key is not None:
        signature = factories.sign_leak_report(private_key, body)
    if signature:
        headers["HTTP_GITHUB_PUBLIC_KEY_SIGNATURE"] = signature
    return api_client.post(URL, body, content_type="application/json", **headers)


def _usable(key: ApiKey) -> bool:
    return ApiKey.objects.get(pk=key.pk).revoked_at is None


def test_a_github_report_revokes_per_policy_and_answers_with_github_feedback(
    api_client, github, tenant, owner, django_capture_on_commit_callbacks
):
    key, token = factories.make_api_key(owner, tenant)
    with django_capture_on_commit_callbacks(execute=True):
        response = _report(api_client, _body(token), github)
    assert response.status_code == 200
    digest = ApiKey.objects.values_list("digest", flat=True).get(pk=key.pk)
    assert response.json() == [
        {
            "token_hash": bytes(digest).hex(),
            "token_type": WHERE["type"],
            "label": "true_positive",
        }
    ]
    assert bytes(digest).hex() == hashlib.sha256(token.encode()).hexdigest()
    assert token not in response.content.decode()
    assert not _usable(key)
    event = AuditEvent.objects.get(action="key.leak_reported")
    assert event.actor_label == f"leak report (github {KEY_ID})"
    assert event.metadata["action"] == "revoked" and event.metadata["url"] == WHERE["url"]
    assert mail.outbox == []  # the default policy revokes without e-mail


def test_notify_policy_keeps_the_key_and_emails(
    api_client, github, tenant, owner, django_capture_on_commit_callbacks
):
    Tenant.objects.filter(pk=tenant.pk).update(leak_policy=LeakPolicy.NOTIFY)
    key, token = factories.make_api_key(owner, tenant)
    with django_capture_on_commit_callbacks(execute=True):
        response = _report(api_client, _body(token), github)
    assert response.json()[0]["label"] == "true_positive"
    assert _usable(key) and len(mail.outbox) == 1
    assert token not in mail.outbox[0].body


def test_unknown_and_foreign_tokens_are_false_positives(api_client, github, tenant, owner):
    unknown = tokens.generate(tokens.Kind.SERVICE)
    foreign = "ghp_notakeywardtokenatall0123456789"
    response = _report(api_client, _body(unknown, foreign), github)
    assert response.status_code == 200
    assert response.json() == [
        {
            "token_hash": hashlib.sha256(t.encode()).hexdigest(),
            "token_type": WHERE["type"],
            "label": "false_positive",
        }
        for t in (unknown, foreign)
    ]
    assert not AuditEvent.objects.filter(action="key.leak_reported").exists()


def test_a_revoked_key_is_a_true_positive_and_stays_revoked(api_client, github, tenant, owner):
    key, token = factories.make_api_key(owner, tenant)
    assert _report(api_client, _body(token), github).status_code == 200
    response = _report(api_client, _body(token), github)  # again: revoked already
    assert response.json()[0]["label"] == "true_positive"
    assert AuditEvent.objects.filter(action="key.revoked").count() == 1
    last = AuditEvent.objects.filter(action="key.leak_reported").latest("id")
    assert last.metadata["was_usable"] is False and last.metadata["action"] == "none"


def test_an_older_key_of_the_document_is_accepted(api_client, settings, tmp_path, tenant, owner):
    private_key, pem = factories.make_leak_signer()
    document = tmp_path / "keys.json"
    document.write_text(json.dumps(_document((OLD_KEY_ID, pem, False))))
    settings.KEYWARD_LEAK_REPORT_GITHUB_KEYS = str(document)
    key, token = factories.make_api_key(owner, tenant)
    response = _report(api_client, _body(token), private_key, key_id=OLD_KEY_ID)
    assert response.status_code == 200 and not _usable(key)


def _refused(response, reason: str) -> None:
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"
    event = AuditEvent.objects.get(action="key.leak_report_refused")
    assert event.metadata["reason"] == reason and event.metadata["format"] == "github"


def test_a_wrong_key_id_is_refused(api_client, github, tenant, owner):
    key, token = factories.make_api_key(owner, tenant)
    _refused(_report(api_client, _body(token), github, key_id="f" * 64), "unknown_key_id")
    assert _usable(key)


def test_a_bad_signature_is_refused(api_client, github, tenant, owner):
    key, token = factories.make_api_key(owner, tenant)
    other_signer, _ = factories.make_leak_signer()
    _refused(_report(api_client, _body(token), other_signer), "bad_signature")
    assert _usable(key)


def test_a_signature_over_another_body_is_refused(api_client, github, tenant, owner):
    key, token = factories.make_api_key(owner, tenant)
    signature = factories.sign_leak_report(github, _body(token))
    body = _body(token).replace(b"content", b"commit!")
    _refused(_report(api_client, body, signature=signature), "bad_signature")
    assert _usable(key)


@pytest.mark.parametrize("signature", ["not base64!", "AAAA"])
def test_a_malformed_signature_is_refused(api_client, github, tenant, owner, signature):
    key, token = factories.make_api_key(owner, tenant)
    _refused(_report(api_client, _body(token), signature=signature), "bad_signature")
    assert _usable(key)


def test_a_missing_signature_is_refused(api_client, github, tenant, owner):
    key, token = factories.make_api_key(owner, tenant)
    _refused(_report(api_client, _body(token)), "unsigned")
    assert _usable(key)


def test_a_keyward_key_id_does_not_sign_a_github_report(
    api_client, github, settings, tenant, owner
):
    """The two formats have their own keys: a key id configured for Keyward-Key-Id is unknown
    under GitHub's headers."""
    private_key, pem = factories.make_leak_signer()
    settings.KEYWARD_LEAK_REPORT_PUBLIC_KEYS = {"scanner-1": pem}
    key, token = factories.make_api_key(owner, tenant)
    _refused(_report(api_client, _body(token), private_key, key_id="scanner-1"), "unknown_key_id")
    assert _usable(key)


def test_without_a_configured_document_github_reports_are_refused(api_client, tenant, owner):
    key, token = factories.make_api_key(owner, tenant)
    private_key, _ = factories.make_leak_signer()
    _refused(_report(api_client, _body(token), private_key), "signer_keys_unavailable")
    assert _usable(key)


def test_the_document_is_read_by_the_task_and_cached(github, settings, tmp_path):
    assert leaks.leak_signer_keys_refresh.enqueue().return_value == 2
    keys = leaks.github_signer_keys()
    assert set(keys) == {KEY_ID, OLD_KEY_ID}
    # Cached: the file can go away, the keys stay until the next read succeeds.
    settings.KEYWARD_LEAK_REPORT_GITHUB_KEYS = str(tmp_path / "gone.json")
    assert set(leaks.github_signer_keys()) == {KEY_ID, OLD_KEY_ID}


def test_an_unknown_key_id_asks_for_a_new_read_at_most_once_a_minute(api_client, github, tmp_path):
    assert set(leaks.github_signer_keys()) == {KEY_ID, OLD_KEY_ID}
    private_key, pem = factories.make_leak_signer()
    (tmp_path / "secret_scanning.json").write_text(json.dumps(_document(("new-key", pem, True))))
    # Read a minute ago already: the rotated key is not seen yet.
    assert leaks.github_signer_keys(wanted="new-key") == leaks.github_signer_keys()
    assert "new-key" not in leaks.github_signer_keys()
    cache.delete(f"{leaks.GITHUB_KEYS_CACHE}:refresh")  # a minute later
    assert set(leaks.github_signer_keys(wanted="new-key")) == {"new-key"}


def test_keys_older_than_an_hour_are_read_again(github, tmp_path):
    import time

    assert set(leaks.github_signer_keys()) == {KEY_ID, OLD_KEY_ID}
    (tmp_path / "secret_scanning.json").write_text(json.dumps(_document()))
    cache.delete(f"{leaks.GITHUB_KEYS_CACHE}:refresh")
    assert set(leaks.github_signer_keys(now=time.time() + 60)) == {KEY_ID, OLD_KEY_ID}
    cache.delete(f"{leaks.GITHUB_KEYS_CACHE}:refresh")
    assert leaks.github_signer_keys(now=time.time() + 3700) == {}


@pytest.mark.parametrize(
    "document",
    [b"not json", b"[]", b'{"keys": []}', b'{"public_keys": {}}'],
)
def test_a_document_that_is_not_githubs_format_is_refused(document):
    with pytest.raises(ValueError):
        leaks.parse_signer_keys(document)


def test_entries_that_are_not_p256_keys_are_left_out():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    _, pem = factories.make_leak_signer()
    ed_pem = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    document = _document(("good", pem, True), ("ed", ed_pem, False), ("junk", "nope", False))
    document["public_keys"].append({"key_identifier": 3})
    assert leaks.parse_signer_keys(json.dumps(document).encode()) == {"good": pem}


def test_a_failed_read_keeps_the_cached_keys(github, settings, tmp_path):
    assert leaks.leak_signer_keys_refresh.enqueue().return_value == 2
    (tmp_path / "secret_scanning.json").write_text("{broken")
    result = leaks.leak_signer_keys_refresh.enqueue()
    assert result.status == "FAILED"
    assert set(leaks.github_signer_keys()) == {KEY_ID, OLD_KEY_ID}


def test_a_plain_http_url_is_refused(settings):
    settings.KEYWARD_LEAK_REPORT_GITHUB_KEYS = "http://keys.example/secret_scanning"
    assert leaks.leak_signer_keys_refresh.enqueue().status == "FAILED"
    assert leaks.github_signer_keys() is None


def test_an_https_url_is_fetched_with_a_size_bound(settings, monkeypatch):
    _, pem = factories.make_leak_signer()
    sent = json.dumps(_document((KEY_ID, pem, True))).encode()
    asked = []

    class Answer:
        def __init__(self, body: bytes) -> None:
            self.body = body

        def read(self, size: int) -> bytes:
            return self.body[:size]

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            return None

    def urlopen(request, timeout):
        asked.append((request.full_url, timeout))
        return Answer(body)

    monkeypatch.setattr(leaks.urllib.request, "urlopen", urlopen)
    settings.KEYWARD_LEAK_REPORT_GITHUB_KEYS = url = "https://api.github.test/meta/keys"
    body = sent
    assert leaks.leak_signer_keys_refresh.enqueue().return_value == 1
    assert asked == [(url, leaks.GITHUB_KEYS_TIMEOUT)]
    body = b" " * (leaks.MAX_KEYS_DOCUMENT + 1)
    assert leaks.leak_signer_keys_refresh.enqueue().status == "FAILED"
    assert set(leaks.github_signer_keys()) == {KEY_ID}


@pytest.mark.django_db(transaction=True)
def test_with_the_database_backend_a_worker_reads_the_keys_first(
    api_client, github, tenant, owner, settings, postgresql
):
    from io import StringIO

    from asgiref.local import Local
    from django.core.management import call_command
    from django.tasks import task_backends

    def reset():
        task_backends.__dict__.pop("settings", None)
        task_backends._connections = Local(task_backends.thread_critical)

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    reset()
    try:
        key, token = factories.make_api_key(owner, tenant)
        # Never read yet: refused, and a read is queued.
        assert _report(api_client, _body(token), github).status_code == 401
        assert _usable(key)
        call_command("db_worker", "--batch", "--no-startup-delay", stdout=StringIO())
        response = _report(api_client, _body(token), github)
        assert response.status_code == 200
        assert response.json()[0]["label"] == "true_positive" and not _usable(key)
    finally:
        reset()
