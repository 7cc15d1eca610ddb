"""Usage per key (rolled up from the audit log), new-network alerts and the least-privilege
review: the key page, the usage API, the review page and narrowing."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from accounts.models import Membership, Tenant
from accounts.principals import Principal
from audit.models import AuditEvent
from audit.services import Actor
from keys import services
from keys.models import (
    ApiKey,
    KeyClientIP,
    KeyNetwork,
    KeyScopeUse,
    KeyUsageDay,
    RollupState,
)
from keys.services import change, keys_usage_rollup, network_of
from tests import factories

pytestmark = pytest.mark.django_db


def _rollup() -> int:
    return keys_usage_rollup(window=timedelta(0))


def _client(api_client, token: str):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api_client


def _url(name: str, **kwargs) -> str:
    return reverse(name, kwargs={"slug": "acme", **kwargs})


def _aged(key: ApiKey, days: int) -> ApiKey:
    ApiKey.objects.filter(pk=key.pk).update(created_at=timezone.now() - timedelta(days=days))
    key.refresh_from_db()
    return key


# --- The rollup -----------------------------------------------------------------------------


def test_rollup_counts_requests_per_day_including_denied_ones_incrementally(
    tenant, owner, api_client
):
    key, token = factories.make_api_key(owner, tenant, scopes=["keys:read"])
    api = _client(api_client, token)
    for _ in range(3):
        assert api.get("/api/v1/keys/").status_code == 200
    assert api.get("/api/v1/members/").status_code == 403
    assert _rollup() == 4
    assert _rollup() == 0
    day = KeyUsageDay.objects.get(key=key)
    assert (day.day, day.requests, day.denied) == (timezone.now().date(), 4, 1)

    assert api.get("/api/v1/whoami/").status_code == 200
    assert _rollup() == 1
    assert KeyUsageDay.objects.get(key=key).requests == 5


def test_events_younger_than_the_delay_wait_for_the_next_run(tenant, owner, api_client):
    key, token = factories.make_api_key(owner, tenant)
    assert _client(api_client, token).get("/api/v1/whoami/").status_code == 200
    assert keys_usage_rollup() == 0  # the default delay: 60 seconds
    assert not KeyUsageDay.objects.filter(key=key).exists()
    assert keys_usage_rollup(now=timezone.now() + timedelta(minutes=2)) == 1
    request_event = AuditEvent.objects.get(action="api.request")
    assert RollupState.objects.get().last_event_id >= request_event.id


def test_rollup_keeps_each_client_address_with_first_and_last_seen(tenant, owner, api_client):
    key, token = factories.make_api_key(owner, tenant)
    api = _client(api_client, token)
    api.get("/api/v1/whoami/", REMOTE_ADDR="203.0.113.5")
    api.get("/api/v1/whoami/", REMOTE_ADDR="198.51.100.9")
    api.get("/api/v1/whoami/", REMOTE_ADDR="203.0.113.5")
    _rollup()
    rows = {row.ip: row for row in KeyClientIP.objects.filter(key=key)}
    assert {ip: row.requests for ip, row in rows.items()} == {"203.0.113.5": 2, "198.51.100.9": 1}
    first = rows["203.0.113.5"]
    assert first.first_seen_at < rows["198.51.100.9"].first_seen_at < first.last_seen_at


def test_request_events_carry_the_scope_granted_and_the_rollup_keeps_it(tenant, owner, api_client):
    key, token = factories.make_api_key(owner, tenant, scopes=["keys:read", "members:read"])
    api = _client(api_client, token)
    assert api.get("/api/v1/keys/").status_code == 200
    assert api.get("/api/v1/audit-events/").status_code == 403  # not held: no scope used
    events = AuditEvent.objects.filter(action__in=["api.request", "api.denied"]).order_by("id")
    assert [e.metadata.get("scopes") for e in events] == [["keys:read"], None]
    _rollup()
    assert set(KeyScopeUse.objects.filter(key=key).values_list("scope", flat=True)) == {"keys:read"}


def test_the_api_path_never_touches_the_rollup_tables(tenant, owner, api_client):
    _, token = factories.make_api_key(owner, tenant, scopes=["keys:read"])
    api = _client(api_client, token)
    with CaptureQueriesContext(connection) as queries:
        assert api.get("/api/v1/keys/", REMOTE_ADDR="192.0.2.1").status_code == 200
    sql = " ".join(q["sql"].lower() for q in queries.captured_queries)
    for table in ("keyusageday", "keyclientip", "keyscopeuse", "keynetwork", "rollupstate"):
        assert table not in sql


# --- New networks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "network"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("not an address", None),
    ],
)
def test_network_of_an_address(ip, network):
    assert network_of(ip) == network


def test_a_request_from_a_new_network_is_recorded_once_and_alerts_the_owner(
    tenant, owner, api_client, django_capture_on_commit_callbacks
):
    key, token = factories.make_api_key(owner, tenant)
    ApiKey.objects.filter(pk=key.pk).update(alert_on_new_network=True)
    api = _client(api_client, token)
    for ip in ("203.0.113.5", "203.0.113.77", "2001:db8::1", "2001:db8::2"):
        api.get("/api/v1/whoami/", REMOTE_ADDR=ip)
    with django_capture_on_commit_callbacks(execute=True):
        _rollup()
        api.get("/api/v1/whoami/", REMOTE_ADDR="203.0.113.9")  # a known network
        _rollup()
    events = AuditEvent.objects.filter(action="key.new_network").order_by("id")
    # The first network is where the key was put to use: kept, not reported as new.
    assert [(e.metadata["network"], e.ip, e.actor_kind) for e in events] == [
        ("2001:db8::/64", "2001:db8::1", "system"),
    ]
    assert set(KeyNetwork.objects.filter(key=key).values_list("network", flat=True)) == {
        "203.0.113.0/24",
        "2001:db8::/64",
    }
    assert len(mail.outbox) == 1
    assert all(m.to == [owner.email] for m in mail.outbox)
    assert "2001:db8::/64" in mail.outbox[0].body and token not in mail.outbox[0].body


def test_a_keys_very_first_request_is_no_new_network(
    tenant, owner, api_client, django_capture_on_commit_callbacks
):
    key, token = factories.make_api_key(owner, tenant)
    ApiKey.objects.filter(pk=key.pk).update(alert_on_new_network=True)
    _client(api_client, token).get("/api/v1/whoami/", REMOTE_ADDR="198.51.100.1")
    with django_capture_on_commit_callbacks(execute=True):
        assert _rollup() == 1
    assert KeyNetwork.objects.filter(key=key, network="198.51.100.0/24").exists()
    assert not AuditEvent.objects.filter(action="key.new_network").exists()
    assert mail.outbox == []


def test_a_rotated_key_is_new_only_on_networks_its_predecessor_never_used(
    tenant, owner, api_client, django_capture_on_commit_callbacks
):
    old, old_token = factories.make_api_key(owner, tenant)
    _client(api_client, old_token).get("/api/v1/whoami/", REMOTE_ADDR="198.51.100.1")
    _rollup()
    new, new_token = services.key_rotate(
        actor=Principal.of_membership(tenant.memberships.get(user=owner)), key=old, grace="1h"
    )
    api = _client(api_client, new_token)
    api.get("/api/v1/whoami/", REMOTE_ADDR="198.51.100.2")  # the predecessor's network
    api.get("/api/v1/whoami/", REMOTE_ADDR="192.0.2.1")
    _rollup()
    events = AuditEvent.objects.filter(action="key.new_network")
    assert [(e.target_id, e.metadata["network"]) for e in events] == [(str(new.pk), "192.0.2.0/24")]


def test_a_new_network_without_the_alert_is_recorded_but_mails_nobody(
    tenant, owner, api_client, django_capture_on_commit_callbacks
):
    _, token = factories.make_api_key(owner, tenant)
    api = _client(api_client, token)
    api.get("/api/v1/whoami/", REMOTE_ADDR="198.51.100.1")
    api.get("/api/v1/whoami/", REMOTE_ADDR="192.0.2.1")
    with django_capture_on_commit_callbacks(execute=True):
        _rollup()
    assert AuditEvent.objects.filter(action="key.new_network").count() == 1
    assert mail.outbox == []


def test_the_alert_is_set_on_the_issue_form_and_toggled_on_the_key_page(owner_client, owner):
    response = owner_client.post(
        _url("keys:issue"),
        {"name": "watched", "expiry": "30", "scopes": ["keys:read"], "alert_on_new_network": "on"},
    )
    assert response.status_code == 200
    key = ApiKey.objects.get(name="watched")
    assert key.alert_on_new_network is True

    response = owner_client.post(_url("keys:alerts", pk=key.pk), {"enabled": "off"})
    assert response.status_code == 302
    assert ApiKey.objects.get(pk=key.pk).alert_on_new_network is False
    event = AuditEvent.objects.get(action="key.network_alert_changed")
    assert (event.actor_kind, event.metadata) == ("user", {"enabled": False})
    page = owner_client.get(_url("keys:detail", pk=key.pk)).content.decode()
    assert "New-network alerts" in page and "Turn on" in page


def test_a_member_cannot_toggle_another_members_alert(client, tenant, member, owner):
    key, _ = factories.make_api_key(owner, tenant)
    factories.verify_session(client, member.user)
    assert client.post(_url("keys:alerts", pk=key.pk), {"enabled": "on"}).status_code == 404
    assert ApiKey.objects.get(pk=key.pk).alert_on_new_network is False


# --- The key page and the usage API ---------------------------------------------------------


def test_key_page_shows_the_usage_chart_addresses_and_latest_requests(
    owner_client, tenant, owner, api_client
):
    key, token = factories.make_api_key(owner, tenant, scopes=["keys:read"])
    api = _client(api_client, token)
    for _ in range(3):
        api.get("/api/v1/keys/", REMOTE_ADDR="203.0.113.5")
    api.get("/api/v1/members/", REMOTE_ADDR="203.0.113.5")
    _rollup()
    html = owner_client.get(_url("keys:detail", pk=key.pk)).content.decode()
    today = timezone.now().date().isoformat()
    assert '<svg role="img" aria-labelledby="usage-chart-title usage-chart-desc"' in html
    assert '<title id="usage-chart-title">Requests per day, last 30 days</title>' in html
    assert "4 requests (1 denied)" in html
    assert f"<title>{today}: 4 requests, 1 denied</title>" in html
    assert f"<tr><td>{today}</td><td>4</td><td>1</td></tr>" in html  # the table fallback
    assert html.count('class="bar"') == 1
    assert "<code>203.0.113.5</code>" in html
    assert "<code>GET /api/v1/keys/</code>" in html and "<code>GET /api/v1/members/</code>" in html
    assert "<script" not in html.split("</main>")[0].split("<main")[1]
    assert token not in html


def test_usage_api_returns_daily_counts_addresses_scopes_and_latest_requests(
    tenant, owner, api_client
):
    key, token = factories.make_api_key(owner, tenant, scopes=["keys:read"])
    api = _client(api_client, token)
    for _ in range(55):
        api.get("/api/v1/whoami/", REMOTE_ADDR="198.51.100.4")
    _rollup()
    response = api.get(f"/api/v1/keys/{key.pk}/usage/")
    assert response.status_code == 200
    data = response.json()
    assert data["key"] == key.pk
    assert len(data["days"]) == 30 and data["days"][-1] == {
        "day": timezone.now().date().isoformat(),
        "requests": 55,
        "denied": 0,
    }
    assert [row["ip"] for row in data["client_ips"]] == ["198.51.100.4"]
    assert data["client_ips"][0]["requests"] == 55
    assert data["scopes_used"] == []  # whoami needs no scope
    requests = data["recent_requests"]
    assert len(requests) == 50
    assert requests[0]["id"] > requests[-1]["id"]
    assert requests[0]["path"] == "/api/v1/whoami/" and requests[0]["status"] == 200


def test_usage_api_needs_keys_read_and_only_shows_keys_it_may_see(
    tenant, owner, member, other_tenant, api_client
):
    mine, token = factories.make_api_key(member, scopes=["keys:read"])
    owners_key, _ = factories.make_api_key(owner, tenant)
    other_owner = other_tenant.memberships.get(role="owner").user
    theirs, _ = factories.make_api_key(other_owner, other_tenant)
    api = _client(api_client, token)
    assert api.get(f"/api/v1/keys/{mine.pk}/usage/").status_code == 200
    assert api.get(f"/api/v1/keys/{owners_key.pk}/usage/").status_code == 404
    assert api.get(f"/api/v1/keys/{theirs.pk}/usage/").json()["code"] == "not_found"
    _, no_read = factories.make_api_key(member, scopes=["keys:revoke"])
    response = _client(api_client, no_read).get(f"/api/v1/keys/{mine.pk}/usage/")
    assert response.status_code == 403 and response.json()["code"] == "insufficient_scope"


# --- Least-privilege review -----------------------------------------------------------------


@pytest.fixture
def reviewed(tenant, owner, member, api_client):
    """Keys the review must list, and one it must not."""
    Tenant.objects.filter(pk=tenant.pk).update(allow_non_expiring_keys=True)
    tenant.refresh_from_db()
    over, token = factories.make_api_key(owner, tenant, scopes=["keys:read", "members:read"])
    _aged(over, 100)
    _client(api_client, token).get("/api/v1/keys/")
    young, _ = factories.make_api_key(owner, tenant, scopes=["keys:read", "members:read"])
    forever, _ = services.key_issue(
        actor=Principal.of_membership(tenant.memberships.get(role="owner")),
        tenant=tenant,
        owner=owner,
        name="forever",
        scopes=["keys:read"],
        expires_at=None,
    )
    orphan, _ = factories.make_api_key(member, name="left the company")
    # Removing a member revokes their keys (tests/keys/test_people.py): a key is orphaned only
    # when the membership vanished around the ORM (raw SQL, a restore from backup).
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Membership._meta.db_table} WHERE id = %s", [member.pk])
    _rollup()
    return {"over": over, "young": young, "forever": forever, "orphan": orphan}


def test_review_page_lists_unused_scopes_keys_without_expiry_and_former_members_keys(
    owner_client, reviewed
):
    response = owner_client.get(_url("keys:review"))
    assert response.status_code == 200
    review = response.context["review"]
    assert [(r.key.pk, r.unused_scopes, r.used_scopes) for r in review.over_scoped] == [
        (reviewed["over"].pk, ["members:read"], ["keys:read"])
    ]
    assert [k.pk for k in review.no_expiry] == [reviewed["forever"].pk]
    assert [k.pk for k in review.orphaned] == [reviewed["orphan"].pk]
    html = response.content.decode()
    assert "Narrow to used scopes" in html and "left the company" in html


def test_review_page_is_for_key_managers_and_auditors(client, tenant, auditor, member, reviewed):
    factories.verify_session(client, auditor.user)
    response = client.get(_url("keys:review"))
    assert response.status_code == 200 and "Narrow to used scopes" not in response.content.decode()
    factories.verify_session(client, factories.add_member(tenant, "member").user)
    assert client.get(_url("keys:review")).status_code == 403


def test_review_page_of_another_tenant_is_a_404(client, other_tenant, owner):
    factories.verify_session(client, owner)
    assert client.get(reverse("keys:review", kwargs={"slug": "globex"})).status_code == 404


def test_narrowing_keeps_the_used_scopes_and_is_audited(owner_client, reviewed):
    key = reviewed["over"]
    response = owner_client.post(
        _url("keys:narrow", pk=key.pk), {"next": "review", "keep": ["keys:read"]}
    )
    assert response.status_code == 302 and response["Location"] == _url("keys:review")
    assert ApiKey.objects.get(pk=key.pk).scopes == ["keys:read"]
    event = AuditEvent.objects.get(action="key.scopes_narrowed")
    assert event.actor_kind == "user" and event.target_id == str(key.pk)
    assert event.metadata["before"] == ["keys:read", "members:read"]
    assert event.metadata["after"] == ["keys:read"]
    assert event.metadata["removed"] == ["members:read"]
    assert owner_client.get(_url("keys:review")).context["review"].over_scoped == []


def test_narrowing_never_leaves_a_key_without_scopes(tenant, owner):
    key, _ = factories.make_api_key(owner, tenant, scopes=["keys:read", "members:read"])
    key = _aged(key, 100)
    actor = Principal.of_membership(tenant.memberships.get(role="owner"))
    with pytest.raises(ValidationError) as refused:
        services.key_narrow_scopes(actor=actor, key=key)
    assert refused.value.messages == [services.NOTHING_USED % {"days": 90}]
    assert ApiKey.objects.get(pk=key.pk).scopes == ["keys:read", "members:read"]
    assert not AuditEvent.objects.filter(action="key.scopes_narrowed").exists()


def test_narrowing_counts_what_the_key_a_rotation_replaced_used(tenant, owner, api_client):
    old, token = factories.make_api_key(owner, tenant, scopes=["keys:read", "members:read"])
    _client(api_client, token).get("/api/v1/members/")
    _rollup()
    old = _aged(old, 100)  # observed for the whole window through its predecessor
    new, _ = services.key_rotate(actor=Actor.cli("test"), key=old, grace="now")
    actor = Principal.of_membership(tenant.memberships.get(role="owner"))
    services.key_narrow_scopes(actor=actor, key=new)
    assert ApiKey.objects.get(pk=new.pk).scopes == ["members:read"]


def test_narrowing_needs_sudo_and_the_right_to_manage_the_key(client, tenant, owner, reviewed):
    key = reviewed["over"]
    auditor = factories.add_member(tenant, "auditor")
    factories.verify_session(client, auditor.user)
    assert client.post(_url("keys:narrow", pk=key.pk)).status_code == 404
    factories.verify_session(client, owner, sudo=False)
    response = client.post(_url("keys:narrow", pk=key.pk), {"keep": ["keys:read"]})
    assert response.status_code == 302 and "/sudo/" in response["Location"]
    assert "/sudo/" in client.get(_url("keys:narrow", pk=key.pk))["Location"]
    assert ApiKey.objects.get(pk=key.pk).scopes == ["keys:read", "members:read"]


def test_key_page_shows_when_each_scope_was_last_used_and_offers_narrowing(owner_client, reviewed):
    html = owner_client.get(_url("keys:detail", pk=reviewed["over"].pk)).content.decode()
    assert "last used" in html and "never used · not used in 90 days" in html
    assert "Narrow to the scopes used in the last 90 days" in html


# --- Too new to judge, and narrowing only after a preview ------------------------------------


def test_a_minutes_old_key_is_too_new_to_judge_on_its_page_and_in_the_review(
    owner_client, tenant, owner, api_client
):
    key, token = factories.make_api_key(owner, tenant, scopes=["keys:read", "members:read"])
    _client(api_client, token).get("/api/v1/keys/")
    _rollup()
    response = owner_client.get(_url("keys:detail", pk=key.pk))
    html = response.content.decode()
    assert "not used in 90 days" not in html
    assert "not used yet · too new to judge" in html
    assert "Narrow to the scopes" not in html and not response.context["can_narrow"]
    review = owner_client.get(_url("keys:review"))
    assert [k.pk for k in review.context["review"].too_new] == [key.pk]
    assert "Too new to judge" in review.content.decode()


def test_narrowing_a_key_too_new_to_judge_is_refused(tenant, owner, api_client):
    key, token = factories.make_api_key(owner, tenant, scopes=["keys:read", "members:read"])
    _client(api_client, token).get("/api/v1/keys/")
    _rollup()
    actor = Principal.of_membership(tenant.memberships.get(role="owner"))
    with pytest.raises(ValidationError) as refused:
        services.key_narrow_scopes(actor=actor, key=key)
    assert refused.value.messages == [change.TOO_NEW_TO_NARROW % {"days": 90}]
    assert ApiKey.objects.get(pk=key.pk).scopes == ["keys:read", "members:read"]
    assert not AuditEvent.objects.filter(action="key.scopes_narrowed").exists()


def test_the_preview_shows_before_and_after_and_changes_nothing(owner_client, reviewed):
    key = reviewed["over"]
    response = owner_client.get(_url("keys:narrow", pk=key.pk))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Remove 1 scope" in html and 'name="keep" value="keys:read"' in html
    assert [r["scope"] for r in response.context["removed"]] == ["members:read"]
    assert ApiKey.objects.get(pk=key.pk).scopes == ["keys:read", "members:read"]
    assert not AuditEvent.objects.filter(action="key.scopes_narrowed").exists()


@pytest.mark.parametrize("keep", [[], ["keys:read", "members:read"], ["members:read"]])
def test_a_confirmation_that_is_not_what_usage_gives_narrows_nothing(owner_client, reviewed, keep):
    key = reviewed["over"]
    response = owner_client.post(_url("keys:narrow", pk=key.pk), {"keep": keep}, follow=True)
    assert escape(change.NARROWING_CHANGED) in response.content.decode()
    assert ApiKey.objects.get(pk=key.pk).scopes == ["keys:read", "members:read"]
    assert not AuditEvent.objects.filter(action="key.scopes_narrowed").exists()


def test_the_chart_counts_requests_the_rollup_has_not_read_yet(
    owner_client, tenant, owner, api_client
):
    key, token = factories.make_api_key(owner, tenant, scopes=["keys:read"])
    api = _client(api_client, token)
    api.get("/api/v1/keys/")
    _rollup()
    api.get("/api/v1/keys/")
    api.get("/api/v1/members/")  # denied: no scope
    response = owner_client.get(_url("keys:detail", pk=key.pk))
    chart = response.context["chart"]
    assert (chart.total, chart.denied) == (3, 1)
    assert len(response.context["requests"]) == 3
    assert _rollup() == 2
    chart = owner_client.get(_url("keys:detail", pk=key.pk)).context["chart"]
    assert (chart.total, chart.denied) == (3, 1)  # counted once, not twice
