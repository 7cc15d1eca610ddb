"""Issue 18's portal defects, from outside: a reloaded one-time page, a form posted after sudo
ran out, the issue form's expiry dates, role descriptions, seed_demo's URL, /favicon.ico."""

import re
import time
from datetime import UTC, timedelta
from io import StringIO

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone

from accounts import roles
from accounts.decorators import FORM_KEPT, FORM_RESTORED, SUDO_FORM_SESSION_KEY, SUDO_SESSION_KEY
from keys.models import ApiKey
from tests import factories

pytestmark = pytest.mark.django_db

ISSUE = {"name": "ci deploy", "expiry": "30", "scopes": ["keys:read"], "allowed_ips": ""}


def _url(name: str, **kwargs) -> str:
    return reverse(name, kwargs={"slug": "acme", **kwargs})


def _once(client, url: str) -> str:
    html = client.get(url).content.decode()
    return re.search(r'name="once" value="([^"]+)"', html).group(1)


# --- Reloading the one-time page --------------------------------------------------------------


def test_posting_the_issue_form_again_answers_that_the_token_was_shown_once(client, member):
    factories.verify_session(client, member.user)
    data = ISSUE | {"once": _once(client, _url("keys:issue"))}
    first = client.post(_url("keys:issue"), data)
    assert first.status_code == 200 and "Make sure to copy your token now" in first.content.decode()
    again = client.post(_url("keys:issue"), data)  # what a browser's reload does
    assert again.status_code == 200
    html = again.content.decode()
    assert "This token was shown once" in html
    assert not re.search(r"kwp_[0-9A-Za-z]{38}", html)  # the hint only, never the token
    assert "no-store" in again["Cache-Control"]
    assert ApiKey.objects.filter(name="ci deploy").count() == 1


def test_posting_the_rotate_form_again_answers_that_the_token_was_shown_once(client, member):
    key, _ = factories.make_api_key(member, name="nightly")
    factories.verify_session(client, member.user)
    url = _url("keys:rotate", pk=key.pk)
    data = {"grace": "1h", "once": _once(client, url)}
    assert "Make sure to copy" in client.post(url, data).content.decode()
    again = client.post(url, data)
    assert again.status_code == 200 and "This token was shown once" in again.content.decode()
    assert ApiKey.objects.filter(name="nightly").count() == 2  # the old key and one successor


def test_another_persons_once_value_shows_nothing_of_their_key(client, member, owner):
    factories.verify_session(client, member.user)
    data = ISSUE | {"once": _once(client, _url("keys:issue"))}
    client.post(_url("keys:issue"), data)
    other = type(client)()
    factories.verify_session(other, owner)
    response = other.post(_url("keys:issue"), data)  # a new session: a new key, not the page
    assert "Make sure to copy your token now" in response.content.decode()


# --- Sudo running out while a form is open --------------------------------------------------


def _expire_sudo(client) -> None:
    session = client.session
    session[SUDO_SESSION_KEY] = time.time() - 3600
    session.save()


def _verify_sudo(client, user) -> None:
    next_url = client.session[SUDO_FORM_SESSION_KEY]["path"]
    response = client.post(
        reverse("accounts:sudo") + f"?next={next_url}",
        {"code": factories.totp_code(user), "next": next_url},
    )
    assert response.status_code == 302 and response["Location"] == next_url


def test_the_issue_form_comes_back_filled_in_after_sudo(client, member):
    factories.verify_session(client, member.user)
    client.get(_url("keys:issue"))
    _expire_sudo(client)
    posted = ISSUE | {"name": "kept name", "expiry": "90", "allowed_ips": "10.0.0.0/8"}
    response = client.post(_url("keys:issue"), posted, HTTP_REFERER=_url("keys:issue"))
    assert response.status_code == 302 and "/account/sudo/" in response["Location"]
    assert not ApiKey.objects.filter(name="kept name").exists()
    page = client.get(response["Location"])
    assert FORM_KEPT in page.content.decode()
    _verify_sudo(client, member.user)
    form_page = client.get(_url("keys:issue"))
    html = form_page.content.decode()
    assert FORM_RESTORED in html
    assert 'value="kept name"' in html and "10.0.0.0/8" in html
    assert re.search(r'value="90"[^>]*checked', html)
    assert re.search(r'value="keys:read"[^>]*checked', html)
    assert not form_page.context["form"].is_bound  # shown to check, not submitted
    assert SUDO_FORM_SESSION_KEY not in client.session  # restored once
    assert 'value="kept name"' not in client.get(_url("keys:issue")).content.decode()


def test_secrets_are_never_kept_in_the_session(client, owner):
    factories.verify_session(client, owner)
    _expire_sudo(client)
    client.post(
        _url("accounts:member_invite"),
        {"email": "new@acme.example", "role": "admin", "password": "hunter2", "token": "kwp_x"},
        HTTP_REFERER=_url("accounts:members"),
    )
    kept = client.session[SUDO_FORM_SESSION_KEY]
    assert kept["path"] == _url("accounts:members")
    assert set(kept["data"]) == {"email", "role"}  # no csrf token, password or token
    _verify_sudo(client, owner)
    html = client.get(_url("accounts:members")).content.decode()
    assert 'value="new@acme.example"' in html
    assert re.search(r'value="admin"[^>]*checked', html)


# --- The issue and invite forms say what they do ----------------------------------------------


def test_each_expiry_preset_shows_the_date_it_gives(client, member):
    factories.verify_session(client, member.user)
    form = client.get(_url("keys:issue")).context["form"]
    labels = dict(form.fields["expiry"].choices)
    when = timezone.now().astimezone(UTC) + timedelta(days=30)
    assert labels["30"].startswith("30 days (tenant default): until ")
    assert f"{when:%Y-%m-%d}" in labels["30"]
    assert labels["custom"] == "Custom date"


def test_the_invite_form_describes_each_role(owner_client):
    form = owner_client.get(_url("accounts:members")).context["invite_form"]
    labels = dict(form.fields["role"].choices)
    assert labels["auditor"] == f"Auditor: {roles.describe('auditor')}"
    assert (
        "Read the tenant's audit log" in labels["auditor"]
        or "read the tenant's audit log" in (labels["auditor"])
    )
    assert labels["owner"].startswith("Owner: Everything")


# --- Small ones --------------------------------------------------------------------------------


def test_seed_demo_prints_the_login_url_of_keyward_base_url(settings, db):
    settings.KEYWARD_BASE_URL = "https://keys.example.org"
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "https://keys.example.org/account/login/" in out.getvalue()
    assert "127.0.0.1:8000" not in out.getvalue()


def test_favicon_ico_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302 and response["Location"] == static("favicon.ico")
    assert "max-age=86400" in response["Cache-Control"]
    with open(finders.find("favicon.ico"), "rb") as icon:
        assert icon.read(4) == b"\x00\x00\x01\x00"  # an ICO file (tests/browser fetch it)
