import json

import pytest
from django.test import Client
from django.urls import reverse

import audit
from accounts.views.audit import PAGE_SIZE
from audit.services import Actor
from tests import factories

pytestmark = pytest.mark.django_db


def _url(name, slug="acme", **kwargs):
    return reverse(f"accounts:audit_{name}", kwargs={"slug": slug, **kwargs})


def _client_for(user):
    client = Client()
    factories.verify_session(client, user)
    return client


@pytest.mark.parametrize(
    "role, status", [("owner", 200), ("admin", 200), ("auditor", 200), ("member", 403)]
)
def test_audit_log_is_readable_by_owners_admins_and_auditors_only(tenant, role, status):
    user = (
        tenant.memberships.get(role="owner").user
        if role == "owner"
        else factories.add_member(tenant, role).user
    )
    assert _client_for(user).get(_url("list")).status_code == status


def test_filters_by_action_and_outcome(owner_client, tenant):
    audit.record("key.revoked", actor=Actor.system(), tenant=tenant, outcome="failure")
    audit.record("key.revoked", actor=Actor.system(), tenant=tenant)
    page = owner_client.get(_url("list"), {"action": "key.revoked", "outcome": "failure"})
    events = page.context["events"]
    assert len(events) == 1 and events[0].outcome == "failure"


def test_bad_filter_input_is_a_400_not_a_500(owner_client):
    response = owner_client.get(_url("list"), {"key": "abc", "since": "yesterday"})
    assert response.status_code == 400
    assert "Enter a whole number" in response.content.decode()


def test_pages_by_keyset_cursor_without_repeats(owner_client, tenant):
    for i in range(PAGE_SIZE + 5):
        audit.record("auth.logged_out", actor=Actor.system(), tenant=tenant, metadata={"i": i})
    first = owner_client.get(_url("list"))
    older = first.context["older"]
    second = owner_client.get(_url("list") + "?" + older)
    ids_1 = [e.pk for e in first.context["events"]]
    ids_2 = [e.pk for e in second.context["events"]]
    assert len(ids_1) == PAGE_SIZE and not set(ids_1) & set(ids_2)
    assert max(ids_2) < min(ids_1)


def test_other_tenants_events_never_show(owner_client, tenant, other_tenant):
    secret = audit.record("key.revoked", actor=Actor.system(), tenant=other_tenant)
    listing = owner_client.get(_url("list"))
    assert secret.pk not in [e.pk for e in listing.context["events"]]
    assert owner_client.get(_url("detail", pk=secret.pk)).status_code == 404
    assert owner_client.get(_url("list", slug="globex")).status_code == 404
    export = b"".join(owner_client.get(_url("export_jsonl")).streaming_content).decode()
    assert all(json.loads(line)["tenant"] == "acme" for line in export.splitlines())


def test_csv_export_streams_and_neutralises_formulas(owner_client, tenant):
    audit.record("auth.login_failed", actor=Actor.anonymous("=HYPERLINK(1)"), tenant=tenant)
    response = owner_client.get(_url("export_csv"), {"action": "auth.login_failed"})
    assert response.streaming and response["Cache-Control"] == "no-store"
    body = b"".join(response.streaming_content).decode()
    lines = body.strip().splitlines()
    assert lines[0].startswith("id,occurred_at,tenant")
    assert len(lines) == 2 and "'=HYPERLINK(1)" in lines[1]


def test_event_detail_shows_metadata(owner_client, tenant):
    event = audit.record(
        "key.revoked", actor=Actor.system(), tenant=tenant, metadata={"reason": "leak"}
    )
    page = owner_client.get(_url("detail", pk=event.pk))
    assert page.status_code == 200 and "leak" in page.content.decode()


def test_admin_exports_a_selection_and_cannot_change_events(client, tenant):
    staff = factories.make_user("ops@example.com")
    staff.is_staff = staff.is_superuser = True
    staff.save()
    factories.verify_session(client, staff)
    event = audit.record("key.revoked", actor=Actor.system(), tenant=tenant)
    changelist = reverse("admin:audit_auditevent_changelist")
    assert client.get(changelist).status_code == 200
    response = client.post(changelist, {"action": "export_jsonl", "_selected_action": [event.pk]})
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert [json.loads(x)["id"] for x in lines] == [event.pk]
    change = client.get(reverse("admin:audit_auditevent_change", args=[event.pk]))
    assert change.status_code == 200 and "Save" not in change.content.decode()
    assert client.post(reverse("admin:audit_auditevent_delete", args=[event.pk])).status_code == 403
