"""Session keys at rest (common/sessions.py): the database holds only digests, the cache none."""

import pytest
from django.contrib.sessions.models import Session
from django.test import Client

from common.sessions import SessionStore, stored_key
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def _logged_in(user) -> Client:
    client = Client()
    factories.verify_session(client, user)
    assert client.get("/account/security/").status_code == 200
    return client


def test_the_database_row_is_named_by_the_cookies_digest_not_the_cookie(owner):
    cookie = _logged_in(owner).cookies["sessionid"].value
    stored = list(Session.objects.values_list("session_key", flat=True))
    assert cookie not in stored
    assert stored_key(cookie) in stored


def test_sessions_never_touch_the_cache(owner, settings):
    # A cache that is down cannot lose a session, nor revive one a logout deleted.
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
    }
    client = _logged_in(owner)
    assert client.get("/account/security/").status_code == 200


def test_a_stolen_row_or_cache_key_is_no_session(owner):
    _logged_in(owner)
    thief = Client()
    for stolen in Session.objects.values_list("session_key", flat=True):
        thief.cookies["sessionid"] = stolen
        response = thief.get("/account/security/")
        assert response.status_code == 302 and "/account/login/" in response["Location"]


def test_the_session_ends_at_logout(owner):
    client = _logged_in(owner)
    cookie = client.cookies["sessionid"].value
    assert SessionStore().exists(cookie)
    client.post("/account/logout/")
    assert not Session.objects.filter(session_key=stored_key(cookie)).exists()
    assert not SessionStore().exists(cookie)
