"""Session keys at rest (common/sessions.py): the database and the cache hold only digests."""

import pytest
from django.contrib.sessions.models import Session
from django.core.cache import cache
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


def test_the_cache_entry_is_named_by_the_digest(owner):
    cookie = _logged_in(owner).cookies["sessionid"].value
    assert cache.get(SessionStore.cache_key_prefix + cookie) is None
    assert cache.get(SessionStore.cache_key_prefix + stored_key(cookie)) is not None


def test_a_stolen_row_or_cache_key_is_no_session(owner):
    _logged_in(owner)
    thief = Client()
    for stolen in Session.objects.values_list("session_key", flat=True):
        thief.cookies["sessionid"] = stolen
        response = thief.get("/account/security/")
        assert response.status_code == 302 and "/account/login/" in response["Location"]


def test_the_session_survives_a_cold_cache_and_ends_at_logout(owner):
    client = _logged_in(owner)
    cookie = client.cookies["sessionid"].value
    cache.clear()
    assert client.get("/account/security/").status_code == 200  # read back from the database
    client.post("/account/logout/")
    assert not Session.objects.filter(session_key=stored_key(cookie)).exists()
    assert cache.get(SessionStore.cache_key_prefix + stored_key(cookie)) is None
    assert not SessionStore().exists(cookie)
