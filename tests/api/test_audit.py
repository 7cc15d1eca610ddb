import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

import audit
from audit import cursors
from audit.models import AuditEvent
from audit.services import Actor
from tests import factories

pytestmark = pytest.mark.django_db
URL = "/api/v1/audit-events/"


@pytest.fixture
def reader(api_client, owner, tenant, settings):
    _, token = factories.make_api_key(owner, tenant, scopes=["audit:read"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api_client


def _record(tenant, n=1, **kwargs):
    return [
        audit.record("key.revoked", actor=Actor.system(), tenant=tenant, **kwargs) for _ in range(n)
    ]


def _pull_all(client, **params):
    seen, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = client.get(URL, query).json()
        seen += [e["id"] for e in page["results"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return seen, cursor


def test_cursor_pages_neither_skip_nor_repeat_while_events_arrive(reader, tenant):
    _record(tenant, 7)
    first = reader.get(URL, {"limit": 3}).json()
    assert len(first["results"]) == 3 and first["has_more"]
    _record(tenant, 4)  # new events arrive between two pulls
    rest, cursor = _pull_all(reader, limit=3, cursor=first["next_cursor"])
    ids = [e["id"] for e in first["results"]] + rest
    expected = list(
        AuditEvent.objects.for_tenant(tenant)
        .filter(action="key.revoked")
        .order_by("id")
        .values_list("id", flat=True)
    )
    assert [i for i in ids if i in expected] == expected
    assert len(ids) == len(set(ids))
    # Polling with the last cursor returns only what is new.
    (new,) = _record(tenant, 1)
    polled = reader.get(URL, {"cursor": cursor, "action": "key.revoked"}).json()["results"]
    assert [e["id"] for e in polled] == [new.pk]


def test_a_version_1_cursor_still_continues_after_its_event(reader, tenant):
    first, second, third = _record(tenant, 3)
    legacy = base64.urlsafe_b64encode(f"v1:{first.pk}".encode()).decode().rstrip("=")
    ids = [
        e["id"]
        for e in reader.get(URL, {"cursor": legacy, "action": "key.revoked"}).json()["results"]
    ]
    assert ids == [second.pk, third.pk]


def test_a_cursor_past_the_last_event_answers_nothing_new(reader, tenant):
    _record(tenant, 2)
    _, cursor = _pull_all(reader, action="key.revoked")
    page = reader.get(URL, {"cursor": cursor, "action": "key.revoked"}).json()
    assert page["results"] == [] and page["next_cursor"] == cursor and not page["has_more"]


@pytest.mark.parametrize(
    "params",
    [{"cursor": "nope"}, {"since": "yesterday"}, {"action": "key.made_up"}, {"limit": 0}],
)
def test_bad_filters_are_400_with_a_code(reader, params):
    response = reader.get(URL, params)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_filters_by_action_outcome_and_key(reader, tenant, owner):
    key, _ = factories.make_api_key(owner, tenant, scopes=["keys:read"])
    _record(tenant, 2, outcome="failure")
    response = reader.get(URL, {"outcome": "failure"}).json()
    assert {e["outcome"] for e in response["results"]} == {"failure"}
    by_key = reader.get(URL, {"key": key.pk}).json()["results"]
    assert by_key and {e["target"]["id"] for e in by_key} == {str(key.pk)}


def test_other_tenants_events_never_appear(reader, other_tenant):
    foreign = _record(other_tenant, 3)
    ids, _ = _pull_all(reader)
    assert not {e.pk for e in foreign} & set(ids)


def test_needs_the_audit_read_scope(api_client, owner, tenant):
    _, token = factories.make_api_key(owner, tenant, scopes=["keys:read"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = api_client.get(URL)
    assert response.status_code == 403
    assert 'scope="audit:read"' in response["WWW-Authenticate"]


@given(st.integers(min_value=0, max_value=2**63 - 1), st.integers(min_value=1, max_value=2**63 - 1))
def test_cursor_round_trips(txid, last_id):
    assert cursors.decode(cursors.encode((txid, last_id))) == (txid, last_id)


@given(st.text(max_size=80))
def test_arbitrary_text_is_never_a_cursor_unless_well_formed(text):
    value = cursors.decode(text)
    assert value is None or (
        len(value) == 2
        and (value[0] is None or 0 <= value[0] < 2**63)
        and type(value[1]) is int
        and 0 <= value[1] < 2**63
    )
