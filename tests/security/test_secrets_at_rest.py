"""Secrets at rest: no plaintext secret in a pg_dump of the database, in any log line, in the
cache or in a cookie.

The test walks the flows that create or carry secrets, the way people and scripts do: a portal
login (with a mistyped password first), keys issued in the portal and on the command line, both
rotated, used on the API (once in a URL, which is refused), one revoked and used again; the
TOTP seed of the login (stored sealed); backup codes generated and typed back (with and without
the dash); a passkey added and used (the challenges of its ceremonies); invitations e-mailed, one
accepted with a new password. Then it dumps the test database with ``pg_dump`` and scans the
dump, the sessions' data decoded, every log record of every logger (the SQL included: the debug
cursor is on), the cache and the cookies for each plaintext, also hex-encoded.

PostgreSQL only (``pg_dump``): locally it skips on SQLite; in CI (``CI`` set) it fails instead.
``transaction=True``, so that everything is committed and visible to pg_dump.
"""

import base64
import io
import json
import logging
import os
import re
import shutil
import subprocess
from glob import glob

import pytest
from django.contrib.sessions.models import Session
from django.core import mail
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test import Client

from accounts.models import AuthenticatorDevice, User
from common.sessions import SessionStore
from tests import factories
from tests.accounts.soft_authenticator import SoftAuthenticator

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_password_hasher"),
]

TOKEN = re.compile(r"kw[ps]_[0-9A-Za-z]{38}")
BACKUP_CODE = re.compile(r"\b[a-km-z2-9]{5}-[a-km-z2-9]{5}\b")
INVITATION_LINK = re.compile(r"/invite/(?P<secret>[A-Za-z0-9_-]{20,})/")
TYPO = factories.PASSWORD[:-1] + "3"
INVITEE_PASSWORD = "another horse, another staple 7"
# Loggers that do not propagate to the root logger, where caplog listens.
OWN_HANDLER_LOGGERS = ["keyward.audit"]


@pytest.fixture
def pg_dump():
    if connection.vendor != "postgresql":
        message = f"secrets at rest needs PostgreSQL and pg_dump, not {connection.vendor}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    found = shutil.which("pg_dump") or next(
        iter(sorted(glob("/usr/lib/postgresql/*/bin/pg_dump"), reverse=True)), None
    )
    if found is None:
        pytest.fail("pg_dump is not installed (postgresql-client)")
    return found


@pytest.fixture
def every_log_line(caplog):
    """Capture every record of every logger at DEBUG, and every SQL statement with its values."""
    caplog.set_level(logging.DEBUG)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and logger.level != logging.NOTSET:
            caplog.set_level(logging.DEBUG, logger=name)  # e.g. "django" is at INFO
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    for name in OWN_HANDLER_LOGGERS:
        logging.getLogger(name).addHandler(caplog.handler)
    debug_cursor = connection.force_debug_cursor
    connection.force_debug_cursor = True  # django.db.backends logs each query with its params
    yield caplog
    connection.force_debug_cursor = debug_cursor
    for name in OWN_HANDLER_LOGGERS:
        logging.getLogger(name).removeHandler(caplog.handler)


def _dump(pg_dump: str) -> str:
    db = connection.settings_dict
    command = [pg_dump, "--no-owner", "--no-privileges", "--dbname", db["NAME"]]
    for flag, value in (("--host", db["HOST"]), ("--port", db["PORT"]), ("--username", db["USER"])):
        if value:
            command += [flag, str(value)]
    env = {**os.environ, "PGPASSWORD": db["PASSWORD"] or ""}
    result = subprocess.run(command, capture_output=True, env=env, timeout=120, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout.decode("utf-8", errors="replace")


def _cache_contents() -> str:
    """Every key and string value of the Redis cache (sessions are cached there too), else
    nothing: CI runs on Redis, and fails rather than skips without it."""
    backend = getattr(cache, "_cache", None)
    if not hasattr(backend, "get_client"):
        if os.environ.get("CI"):
            pytest.fail("CI runs the secrets test on Redis: set REDIS_URL")
        return ""
    client = backend.get_client(None)
    values = []
    for key in client.scan_iter(count=1000):
        values.append(key)
        if client.type(key) == b"string":
            values.append(client.get(key) or b"")
    return "\n".join(v.decode("latin-1") for v in values)


def _one(pattern: re.Pattern, text: str) -> str:
    found = set(pattern.findall(text)) if not pattern.groupindex else None
    if found is None:
        found = {m["secret"] for m in pattern.finditer(text)}
    assert len(found) == 1, found
    return found.pop()


def _log_in(client: Client, user) -> None:
    """The portal login, as a person does it: a typo first, then the password and a TOTP code."""
    response = client.post("/account/login/", {"email": user.email, "password": TYPO})
    assert response.status_code == 200
    response = client.post("/account/login/", {"email": user.email, "password": factories.PASSWORD})
    assert response.status_code == 302, response.content[:500]
    response = client.post("/account/mfa/verify/", {"code": factories.totp_code(user)})
    assert response.status_code == 302, response.content[:500]


def _issue_in_portal(client: Client, slug: str) -> str:
    response = client.post(
        f"/t/{slug}/keys/new/",
        {"name": "laptop", "expiry": "30", "scopes": ["keys:read", "members:read"]},
    )
    assert response.status_code == 200, response.content[:500]
    return _one(TOKEN, response.content.decode())


def _rotate_in_portal(client: Client, slug: str, key_id: int) -> str:
    response = client.post(f"/t/{slug}/keys/{key_id}/rotate/", {"grace": "24h"})
    assert response.status_code == 200, response.content[:500]
    return _one(TOKEN, response.content.decode())


def _key_id(token: str) -> int:
    from keys.models import ApiKey
    from keys.tokens import digest

    return ApiKey.objects.get(digest=digest(token)).pk


def _exchange(api: Client, key: str) -> str:
    from urllib.parse import urlencode

    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": key,
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
    }
    response = api.post(
        "/oauth/token", urlencode(form), content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def _exchange_revoke(api: Client, token: str) -> int:
    from urllib.parse import urlencode

    return api.post(
        "/oauth/revoke",
        urlencode({"token": token}),
        content_type="application/x-www-form-urlencoded",
    ).status_code


def _signing_private_keys() -> dict[str, str]:
    """Every signing key's private half, as PEM body, JWK ``d`` and hex (read by unsealing)."""
    from cryptography.hazmat.primitives import serialization

    from accounts import crypto
    from federation.models import SigningKey

    found = {}
    for key in SigningKey.objects.all():
        der = crypto.unseal(
            key.sealed_private_key, context=f"federation.signing_key:{key.kid}".encode()
        )
        private = serialization.load_der_private_key(der, password=None)
        scalar = private.private_numbers().private_value.to_bytes(32, "big")
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        found[f"signing key {key.kid} (PEM)"] = "".join(pem.splitlines()[1:-1])
        found[f"signing key {key.kid} (DER)"] = base64.b64encode(der).decode()
        found[f"signing key {key.kid} (d)"] = base64.urlsafe_b64encode(scalar).rstrip(b"=").decode()
        found[f"signing key {key.kid} (hex)"] = scalar.hex()
    assert len(found) == 8  # two rotations: two keys
    return found


def test_no_plaintext_secret_is_at_rest_or_in_a_log(
    pg_dump, every_log_line, tenant, owner, settings
):
    slug = tenant.slug
    portal = Client()
    _log_in(portal, owner)
    secrets: dict[str, str] = {"password": factories.PASSWORD, "mistyped password": TYPO}
    # The TOTP seed: stored sealed (accounts/crypto.py), never as hex or base32.
    seed = AuthenticatorDevice.objects.get(user=owner).bin_key
    secrets["TOTP seed"] = base64.b32encode(seed).decode()
    secrets["TOTP seed as hex"] = seed.hex()

    # Keys: one in the portal, one on the command line; both rotated in the portal.
    secrets["portal key"] = _issue_in_portal(portal, slug)
    factories.make_service_id(tenant, "deploy-bot", role="member")
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "issue_service_key",
        tenant=slug,
        service_id="deploy-bot",
        name="ci",
        scopes="keys:read",
        expires_in="30d",
        stdout=out,
        stderr=err,
    )
    secrets["cli key"] = out.getvalue().strip()
    assert TOKEN.fullmatch(secrets["cli key"])
    secrets["rotated portal key"] = _rotate_in_portal(portal, slug, _key_id(secrets["portal key"]))
    secrets["rotated cli key"] = _rotate_in_portal(portal, slug, _key_id(secrets["cli key"]))

    # The keys at work: valid, in a URL (refused and recorded as exposed), revoked.
    api = Client()
    for name in ("portal key", "rotated portal key", "cli key", "rotated cli key"):
        response = api.get("/api/v1/whoami/", HTTP_AUTHORIZATION=f"Bearer {secrets[name]}")
        assert response.status_code == 200, (name, response.content)
    response = api.get(f"/api/v1/keys/?access_token={secrets['cli key']}")
    assert response.status_code == 400
    revoked = _key_id(secrets["portal key"])
    assert portal.post(f"/t/{slug}/keys/{revoked}/revoke/", {"reason": "test"}).status_code == 302
    response = api.get("/api/v1/whoami/", HTTP_AUTHORIZATION=f"Bearer {secrets['portal key']}")
    assert response.status_code == 401

    # Signed tokens (federation): the signing key rotated, a key exchanged for a JWT that is
    # used and revoked; neither the JWT nor any form of a signing private key is at rest.
    call_command("jwt_rotate_key", stdout=io.StringIO())
    exchanged = _exchange(api, secrets["rotated cli key"])
    secrets["jwt"] = exchanged
    response = api.get("/api/v1/whoami/", HTTP_AUTHORIZATION=f"Bearer {exchanged}")
    assert response.status_code == 200, response.content
    call_command("jwt_rotate_key", stdout=io.StringIO())
    assert _exchange_revoke(api, exchanged) == 200
    secrets.update(_signing_private_keys())

    # Backup codes: generated, then typed back with and without the dash.
    response = portal.post("/account/security/backup-codes/")
    assert response.status_code == 200, response.content[:500]
    codes = sorted(set(BACKUP_CODE.findall(response.content.decode())))
    assert len(codes) == 10
    for n, code in enumerate(codes):
        secrets[f"backup code {n}"] = code
        secrets[f"backup code {n} without dash"] = code.replace("-", "")
    for typed in (codes[0].replace("-", ""), codes[1].upper()):
        response = portal.post("/account/sudo/", {"code": typed})
        assert response.status_code == 302, response.content[:500]

    # A passkey: added (a registration ceremony), then used for sudo (an authentication one).
    # Each ceremony's challenge is a secret of its moment: the session keeps only its digest.
    assert portal.post("/account/security/passkeys/add/", {"name": "laptop"}).status_code == 302
    authenticator = SoftAuthenticator()
    options = portal.post("/account/mfa/passkeys/register/begin/").json()
    secrets["passkey registration challenge"] = options["challenge"]
    answer = json.dumps(authenticator.create(options))
    response = portal.post(
        "/account/mfa/passkeys/register/complete/", answer, content_type="application/json"
    )
    assert response.status_code == 200, response.content[:500]
    options = portal.post("/account/mfa/passkeys/verify/begin/").json()
    secrets["passkey authentication challenge"] = options["challenge"]
    answer = json.dumps(authenticator.get(options))
    response = portal.post(
        "/account/mfa/passkeys/verify/complete/", answer, content_type="application/json"
    )
    assert response.status_code == 200, response.content[:500]

    # Invitations: two e-mailed; one accepted by a new user with a password.
    for email in ("new@example.com", "pending@example.com"):
        response = portal.post(f"/t/{slug}/members/invite/", {"email": email, "role": "member"})
        assert response.status_code == 302, response.content[:500]
    links = [_one(INVITATION_LINK, m.body) for m in mail.outbox if "/invite/" in m.body]
    assert len(links) == 2
    secrets["invitation 1"], secrets["invitation 2"] = links
    invitee = Client()
    assert invitee.get(f"/invite/{links[0]}/").status_code == 302
    response = invitee.post(
        "/invite/accept/",
        {"full_name": "New Person", "password1": INVITEE_PASSWORD, "password2": INVITEE_PASSWORD},
    )
    assert response.status_code == 302, response.content[:500]
    secrets["invitee password"] = INVITEE_PASSWORD

    # Every session cookie the run handed out: the clients' last ones, and the operator's.
    operator = factories.make_user("operator@example.com")
    User.objects.filter(pk=operator.pk).update(is_staff=True, is_superuser=True)
    admin = Client()
    _log_in(admin, operator)
    assert admin.get("/admin/").status_code == 200
    sessions = {
        f"session cookie of {name}": c.cookies["sessionid"].value
        for name, c in (("portal", portal), ("invitee", invitee), ("operator", admin))
    }

    # What is at rest, and what was logged.
    places = {
        "pg_dump": _dump(pg_dump),
        "logs": "\n".join(
            [every_log_line.text]
            + [record.getMessage() for record in every_log_line.records]
            + [str(record.args) for record in every_log_line.records]
        ),
        "cache": _cache_contents(),
        # The sessions' data as the app reads it back (what a dump holds, decoded).
        "sessions (decoded)": "\n".join(
            json.dumps(SessionStore().decode(row.session_data)) for row in Session.objects.all()
        ),
        "cookies": "\n".join(str(client.cookies) for client in (portal, api, invitee)),
    }
    # The places hold what they should: the SQL of the flows, the keys' table, the sessions.
    assert 'INSERT INTO "keys_apikey"' in places["logs"]
    assert "COPY public.keys_apikey" in places["pg_dump"]
    assert "COPY public.federation_signingkey" in places["pg_dump"]
    assert "sessionid" in places["cookies"]
    leaks = [
        f"{name} in {where}"
        for name, value in secrets.items()
        for where, text in places.items()
        if value in text or value.encode().hex() in text
    ]
    leaks += [
        f"{name} in {where}"
        for name, value in sessions.items()
        for where, text in places.items()
        if where != "cookies" and value in text
    ]
    assert leaks == []
    print(
        f"\nsecrets at rest: {len(secrets)} secrets x {len(places)} places "
        f"(pg_dump {len(places['pg_dump'])} chars, {len(every_log_line.records)} log records); "
        "no leak"
    )
