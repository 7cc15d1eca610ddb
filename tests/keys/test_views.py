import json
import re
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from accounts.models import Tenant
from audit.models import AuditEvent
from audit.services import Actor
from keys import services, tokens
from keys.models import ApiKey
from keys.networks import BAD_CIDR
from tests import factories

pytestmark = pytest.mark.django_db

TOKEN_IN_PAGE = re.compile(r'<code class="secret" id="token">([^<]+)</code>')


def _url(name: str, slug: str = "acme", **kwargs) -> str:
    return reverse(name, kwargs={"slug": slug, **kwargs})


def _issue_data(**overrides) -> dict:
    return {"name": "ci deploy", "expiry": "30", "scopes": ["keys:read"], "allowed_ips": ""} | (
        overrides
    )


def _token_of(response) -> str:
    match = TOKEN_IN_PAGE.search(response.content.decode())
    assert match, "the one-time page shows no token"
    return match.group(1)


def _events(action: str):
    return AuditEvent.objects.filter(action=action)


def _everything_stored() -> str:
    """Every column of every key, audit event and session, as text."""
    rows = [repr(list(ApiKey.objects.values_list()))]
    rows.append(repr(list(AuditEvent.objects.values_list())))
    for session in Session.objects.all():
        rows.append(session.session_data)
        rows.append(json.dumps(session.get_decoded(), default=str))
    return "\n".join(rows)


# --- Issue and the one-time page --------------------------------------------------------


def test_issuing_shows_the_token_once_and_stores_only_its_digest(client, member):
    factories.verify_session(client, member.user)
    response = client.post(_url("keys:issue"), _issue_data(allowed_ips="10.0.0.0/8"))

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    token = _token_of(response)
    parsed = tokens.parse(token)
    assert parsed is not None and parsed.kind is tokens.Kind.PERSONAL
    key = ApiKey.objects.get()
    assert bytes(key.digest) == tokens.digest(token)
    assert (key.user, key.name, key.scopes, key.allowed_ips) == (
        member.user,
        "ci deploy",
        ["keys:read"],
        ["10.0.0.0/8"],
    )
    assert key.expires_at == pytest.approx(
        timezone.now() + timedelta(days=30), abs=timedelta(minutes=1)
    )
    assert _events("key.issued").filter(target_id=str(key.pk)).count() == 1
    assert token not in _everything_stored()
    assert token not in dict(client.session.items()).__repr__()
    assert token not in str(response.cookies)


def test_one_time_page_offers_a_copy_button_a_warning_and_a_tokenless_example(client, member):
    factories.verify_session(client, member.user)
    response = client.post(_url("keys:issue"), _issue_data())
    html = response.content.decode()
    token = _token_of(response)

    assert html.count(token) == 1
    assert '<button type="button" class="btn" data-copy-target="token">Copy</button>' in html
    assert escape("Make sure to copy your token now. You won’t be able to see it again.") in html
    assert 'curl -H "Authorization: Bearer $KEYWARD_TOKEN" http' in html
    assert "/api/v1/whoami/" in html
    assert "keys:read" in html and "ci deploy" in html


def test_reloading_the_detail_page_does_not_show_the_token_again(client, member):
    factories.verify_session(client, member.user)
    token = _token_of(client.post(_url("keys:issue"), _issue_data()))
    key = ApiKey.objects.get()

    detail = client.get(_url("keys:detail", pk=key.pk))
    assert detail.status_code == 200
    assert token not in detail.content.decode()
    assert key.hint in detail.content.decode()
    listing = client.get(_url("keys:list"))
    assert token not in listing.content.decode()


@pytest.mark.parametrize("method", ["get", "post"])
def test_issuing_without_a_fresh_second_factor_asks_for_one(client, member, method):
    factories.verify_session(client, member.user, sudo=False)
    response = getattr(client, method)(_url("keys:issue"), _issue_data())

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:sudo"))
    assert not ApiKey.objects.exists()


def test_issue_form_offers_the_policy_and_the_role_ceiling(client, member):
    factories.verify_session(client, member.user)
    response = client.get(_url("keys:issue"))

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    assert 'value="keys:read"' in html
    assert 'value="audit:read"' not in html
    assert 'value="never"' not in html
    assert re.search(r'value="30"[^>]*checked', html)  # the tenant default


def _set_policy(tenant: Tenant, **policy) -> None:
    for field, value in policy.items():
        setattr(tenant, field, value)
    tenant.save(update_fields=list(policy))


@pytest.mark.parametrize(
    ("policy", "data", "field", "message"),
    [
        (
            {"max_key_lifetime_days": 30},
            {"expiry": "365"},
            "expiry",
            services.EXPIRY_TOO_LONG % {"days": 30},
        ),
        (
            {"max_key_lifetime_days": 30},
            {
                "expiry": "custom",
                "expiry_date": (timezone.now() + timedelta(days=60)).date().isoformat(),
            },
            "expiry",
            services.EXPIRY_TOO_LONG % {"days": 30},
        ),
        ({}, {"expiry": "never"}, "expiry", services.EXPIRY_REQUIRED),
        ({}, {"expiry": "custom", "expiry_date": "2001-01-01"}, "expiry", services.EXPIRY_PAST),
        (
            {},
            {"scopes": ["keys:read", "audit:read"]},
            "scopes",
            services.SCOPE_ABOVE_CEILING % {"scope": "audit:read"},
        ),
        ({}, {"scopes": ["keys:delete"]}, "scopes", "Unknown scope: keys:delete."),
        (
            {},
            {"allowed_ips": "10.0.0.0/8\n300.1.1.1"},
            "allowed_ips",
            BAD_CIDR % {"value": "300.1.1.1"},
        ),
    ],
)
def test_policy_violations_are_field_errors_and_issue_nothing(
    client, tenant, member, policy, data, field, message
):
    _set_policy(tenant, **policy)
    factories.verify_session(client, member.user)
    response = client.post(_url("keys:issue"), _issue_data(**data))

    assert response.status_code == 400
    assert response.context["form"].errors[field] == [message]
    assert escape(message) in response.content.decode()
    assert not ApiKey.objects.exists()
    assert not _events("key.issued").exists()


def test_a_duplicate_name_is_a_field_error_and_issues_nothing(client, member):
    factories.make_api_key(member, name="ci deploy")
    factories.verify_session(client, member.user)
    response = client.post(_url("keys:issue"), _issue_data(name="ci deploy"))

    assert response.status_code == 400
    message = services.NAME_TAKEN % {"name": "ci deploy"}
    assert response.context["form"].errors["name"] == [message]
    assert ApiKey.objects.count() == 1
    assert _events("key.issued").count() == 1


def test_a_non_expiring_key_is_issued_when_the_policy_allows_it(client, tenant, member):
    _set_policy(tenant, allow_non_expiring_keys=True)
    factories.verify_session(client, member.user)
    response = client.post(_url("keys:issue"), _issue_data(expiry="never"))

    assert response.status_code == 200
    assert ApiKey.objects.get().expires_at is None


# --- List and detail --------------------------------------------------------------------


def test_a_member_lists_only_their_own_tokens(client, member, admin_member):
    mine, _ = factories.make_api_key(member, name="mine")
    factories.make_api_key(admin_member, name="the admin's")
    factories.verify_session(client, member.user)
    response = client.get(_url("keys:list"))

    html = response.content.decode()
    assert response.status_code == 200
    assert "mine" in html and mine.hint in html
    assert "the admin&#x27;s" not in html
    assert "All keys of the tenant" not in html
    assert 'class="badge badge-active"' in html
    assert _url("keys:issue") in html


def test_an_admin_also_sees_every_key_of_the_tenant_with_its_owner(client, admin_member, member):
    factories.make_api_key(member, name="member key")
    service_id = factories.make_service_id(admin_member.tenant)
    factories.make_api_key(service_id, name="deploy")
    factories.verify_session(client, admin_member.user)
    response = client.get(_url("keys:list"))

    html = response.content.decode()
    assert "API keys of Acme" in html  # one list of every key, each with its owner
    assert "member key" in html and member.user.email in html
    assert "deploy" in html and "deploy-bot" in html


def test_list_shows_each_status_with_its_badge(client, member):
    now = timezone.now()
    revoked, _ = factories.make_api_key(member, name="revoked")
    services.key_revoke(actor=Actor.cli("test"), key=revoked)
    expiring, _ = factories.make_api_key(member, name="expiring", days=30)
    ApiKey.objects.filter(pk=expiring.pk).update(created_at=now - timedelta(days=27))
    ApiKey.objects.filter(pk=expiring.pk).update(expires_at=now + timedelta(days=3))
    rotated, _ = factories.make_api_key(member, name="rotated")
    services.key_rotate(actor=Actor.cli("test"), key=rotated, grace="1h", now=now)
    factories.verify_session(client, member.user)
    html = client.get(_url("keys:list")).content.decode()
    inactive = client.get(_url("keys:list") + "?tab=inactive").content.decode()

    assert 'badge badge-revoked">revoked<' in inactive  # the Inactive tab
    assert 'badge badge-expiring">expires soon<' in html
    assert 'badge badge-expiring">rotated, in grace<' in html
    assert 'badge badge-active">active<' in html


def test_detail_shows_scopes_usage_and_the_keys_recent_events(client, member):
    key, _ = factories.make_api_key(member, scopes=["keys:read", "members:read"])
    ApiKey.objects.filter(pk=key.pk).update(
        last_used_at=timezone.now(), last_used_ip="203.0.113.7", allowed_ips=["203.0.113.0/24"]
    )
    factories.verify_session(client, member.user)
    response = client.get(_url("keys:detail", pk=key.pk))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Read the tenant&#x27;s members and their roles" in html
    assert "203.0.113.7" in html and "203.0.113.0/24" in html
    assert "key.issued" in html
    assert [e.action for e in response.context["events"]] == ["key.issued"]


def test_a_member_cannot_see_revoke_or_rotate_an_admins_key(client, member, admin_member):
    key, _ = factories.make_api_key(admin_member)
    factories.verify_session(client, member.user)

    for name in ("keys:detail", "keys:revoke", "keys:rotate"):
        assert client.get(_url(name, pk=key.pk)).status_code == 404
        assert client.post(_url(name, pk=key.pk), {"grace": "now"}).status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None and key.rotated_at is None


# --- Revoke -----------------------------------------------------------------------------


def test_revoke_page_asks_for_confirmation_and_a_reason(client, member):
    key, _ = factories.make_api_key(member)
    factories.verify_session(client, member.user)
    response = client.get(_url("keys:revoke", pk=key.pk))

    assert response.status_code == 200
    assert 'name="reason"' in response.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is None


def test_revoking_records_the_reason_and_says_so(client, member):
    key, token = factories.make_api_key(member)
    factories.verify_session(client, member.user)
    response = client.post(_url("keys:revoke", pk=key.pk), {"reason": "laptop stolen"})

    assert response.status_code == 302
    assert response["Location"] == _url("keys:detail", pk=key.pk)
    key.refresh_from_db()
    assert key.status() == "revoked" and key.revoked_reason == "laptop stolen"
    event = _events("key.revoked").get()
    assert event.metadata == {"reason": "laptop stolen"}
    assert event.actor_id == str(member.user.pk)
    page = client.get(response["Location"])
    assert "revoked" in page.content.decode() and "laptop stolen" in page.content.decode()
    assert token not in page.content.decode()


def test_an_admin_can_revoke_a_members_key(client, admin_member, member):
    key, _ = factories.make_api_key(member)
    factories.verify_session(client, admin_member.user, sudo=False)
    response = client.post(_url("keys:revoke", pk=key.pk), {"reason": "offboarding"})

    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_by == admin_member.user
    assert _events("key.revoked").get().actor_id == str(admin_member.user.pk)


@pytest.mark.parametrize("method", ["get", "post"])
def test_revoking_a_revoked_key_says_so_without_an_error_page(client, member, method):
    key, _ = factories.make_api_key(member)
    services.key_revoke(actor=Actor.cli("test"), key=key, reason="first")
    factories.verify_session(client, member.user)
    response = getattr(client, method)(
        _url("keys:revoke", pk=key.pk), {"reason": "again"}, follow=True
    )

    assert response.status_code == 200
    assert escape(services.ALREADY_REVOKED) in response.content.decode()
    assert _events("key.revoked").count() == 1


def test_revoking_without_a_reason_is_allowed(client, member):
    key, _ = factories.make_api_key(member)
    factories.verify_session(client, member.user)
    response = client.post(_url("keys:revoke", pk=key.pk))

    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None and key.revoked_reason == ""


def test_a_too_long_reason_is_a_field_error(client, member):
    key, _ = factories.make_api_key(member)
    factories.verify_session(client, member.user)
    response = client.post(_url("keys:revoke", pk=key.pk), {"reason": "x" * 201})

    assert response.status_code == 400
    assert "reason" in response.context["form"].errors
    key.refresh_from_db()
    assert key.revoked_at is None


# --- Rotate -----------------------------------------------------------------------------


def test_rotating_with_24h_grace_shows_the_new_token_once_and_keeps_the_old_key(client, member):
    old, old_token = factories.make_api_key(member, name="deploy", scopes=["keys:read"])
    factories.verify_session(client, member.user)
    form = client.get(_url("keys:rotate", pk=old.pk))
    assert form.status_code == 200 and 'value="24h"' in form.content.decode()

    response = client.post(_url("keys:rotate", pk=old.pk), {"grace": "24h"})

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    token = _token_of(response)
    new = ApiKey.objects.get(rotated_from=old)
    assert bytes(new.digest) == tokens.digest(token) and token != old_token
    assert new.status() == "active" and (new.name, new.scopes) == ("deploy", ["keys:read"])
    old.refresh_from_db()
    assert old.status() == "rotated"
    assert old.expires_at == pytest.approx(
        timezone.now() + timedelta(hours=24), abs=timedelta(minutes=1)
    )
    assert "keeps working until" in response.content.decode()
    assert _events("key.rotated").filter(target_id=str(new.pk)).count() == 1
    assert token not in _everything_stored()


def test_rotating_without_a_fresh_second_factor_asks_for_one(client, member):
    key, _ = factories.make_api_key(member)
    factories.verify_session(client, member.user, sudo=False)
    response = client.post(_url("keys:rotate", pk=key.pk), {"grace": "now"})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:sudo"))
    assert ApiKey.objects.count() == 1


def test_rotating_a_revoked_key_is_refused_with_a_form_error(client, member):
    key, _ = factories.make_api_key(member)
    services.key_revoke(actor=Actor.cli("test"), key=key)
    factories.verify_session(client, member.user)
    assert services.NOT_ROTATABLE in client.get(_url("keys:rotate", pk=key.pk)).content.decode()

    response = client.post(_url("keys:rotate", pk=key.pk), {"grace": "now"})
    assert response.status_code == 400
    assert response.context["form"].non_field_errors() == [services.NOT_ROTATABLE]
    assert ApiKey.objects.count() == 1
    assert not _events("key.rotated").exists()


# --- Service keys -----------------------------------------------------------------------


def test_a_service_id_manager_issues_a_service_key(client, admin_member):
    service_id = factories.make_service_id(admin_member.tenant)
    factories.verify_session(client, admin_member.user)
    url = _url("keys:service_issue", sid=service_id.pk)
    assert client.get(url).status_code == 200

    response = client.post(url, _issue_data(name="deploy"))

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    token = _token_of(response)
    assert tokens.parse(token).kind is tokens.Kind.SERVICE
    key = ApiKey.objects.get()
    assert key.service_id == service_id and key.user is None
    assert key.created_by == admin_member.user
    detail = client.get(_url("keys:service_id_detail", pk=service_id.pk))
    html = detail.content.decode()
    assert "deploy" in html and key.hint in html
    assert _url("keys:revoke", pk=key.pk) in html and _url("keys:rotate", pk=key.pk) in html
    assert token not in html


def test_issuing_a_service_key_needs_a_fresh_second_factor(client, admin_member):
    service_id = factories.make_service_id(admin_member.tenant)
    factories.verify_session(client, admin_member.user, sudo=False)
    response = client.post(_url("keys:service_issue", sid=service_id.pk), _issue_data())

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:sudo"))
    assert not ApiKey.objects.exists()


def test_a_service_key_stays_within_the_service_ids_role(client, admin_member):
    service_id = factories.make_service_id(admin_member.tenant, role="member")
    factories.verify_session(client, admin_member.user)
    response = client.post(
        _url("keys:service_issue", sid=service_id.pk), _issue_data(scopes=["audit:read"])
    )

    assert response.status_code == 400
    assert "scopes" in response.context["form"].errors
    assert not ApiKey.objects.exists()


def test_a_disabled_service_id_gets_no_key(client, admin_member):
    service_id = factories.make_service_id(admin_member.tenant)
    service_id.is_active = False
    service_id.save(update_fields=["is_active"])
    factories.verify_session(client, admin_member.user)
    response = client.post(_url("keys:service_issue", sid=service_id.pk), _issue_data())

    assert response.status_code == 400
    assert response.context["form"].non_field_errors() == [services.SERVICE_ID_DISABLED]
    assert not ApiKey.objects.exists()


def test_a_member_may_not_issue_service_keys(client, member):
    service_id = factories.make_service_id(member.tenant)
    factories.verify_session(client, member.user)
    response = client.post(_url("keys:service_issue", sid=service_id.pk), _issue_data())

    assert response.status_code == 403
    assert not ApiKey.objects.exists()


def test_a_member_sees_service_keys_without_manage_links(client, member):
    service_id = factories.make_service_id(member.tenant)
    key, _ = factories.make_api_key(service_id)
    factories.verify_session(client, member.user)
    html = client.get(_url("keys:service_id_detail", pk=service_id.pk)).content.decode()

    assert key.hint in html
    assert _url("keys:revoke", pk=key.pk) not in html
    assert _url("keys:service_issue", sid=service_id.pk) not in html


def test_a_service_id_manager_rotates_and_revokes_a_service_key(client, admin_member):
    service_id = factories.make_service_id(admin_member.tenant)
    key, _ = factories.make_api_key(service_id)
    factories.verify_session(client, admin_member.user)

    rotated = client.post(_url("keys:rotate", pk=key.pk), {"grace": "now"})
    assert rotated.status_code == 200
    assert tokens.parse(_token_of(rotated)).kind is tokens.Kind.SERVICE
    new = ApiKey.objects.get(rotated_from=key)
    revoked = client.post(_url("keys:revoke", pk=new.pk), {"reason": "retired"})
    assert revoked.status_code == 302
    assert list(ApiKey.objects.usable()) == []


# --- Cross-tenant -----------------------------------------------------------------------


@pytest.fixture
def acme_objects(member):
    service_id = factories.make_service_id(member.tenant)
    key, _ = factories.make_api_key(member)
    return {"pk": key.pk, "sid": service_id.pk}


CROSS_TENANT_URLS = [
    ("keys:list", ()),
    ("keys:issue", ()),
    ("keys:detail", ("pk",)),
    ("keys:revoke", ("pk",)),
    ("keys:rotate", ("pk",)),
    ("keys:policy", ()),
    ("keys:service_issue", ("sid",)),
]


@pytest.mark.parametrize(("name", "args"), CROSS_TENANT_URLS)
@pytest.mark.parametrize("method", ["get", "post"])
def test_another_tenants_keys_urls_are_404(client, other_tenant, acme_objects, name, args, method):
    globex_owner = other_tenant.memberships.get(role="owner").user
    factories.verify_session(client, globex_owner)
    url = _url(name, "acme", **{a: acme_objects[a] for a in args})

    response = getattr(client, method)(url, _issue_data(grace="now", reason="x"))

    assert response.status_code == 404
    assert ApiKey.objects.count() == 1
    assert ApiKey.objects.get().revoked_at is None


@pytest.mark.parametrize("name", ["keys:detail", "keys:revoke", "keys:rotate"])
def test_another_tenants_key_is_404_under_ones_own_tenant(client, other_tenant, acme_objects, name):
    globex_owner = other_tenant.memberships.get(role="owner").user
    factories.verify_session(client, globex_owner)
    url = _url(name, "globex", pk=acme_objects["pk"])

    assert client.get(url).status_code == 404
    assert client.post(url, {"grace": "now", "reason": "x"}).status_code == 404
    assert ApiKey.objects.get().revoked_at is None


def test_another_tenants_service_id_is_404_under_ones_own_tenant(
    client, other_tenant, acme_objects
):
    globex_owner = other_tenant.memberships.get(role="owner").user
    factories.verify_session(client, globex_owner)
    url = _url("keys:service_issue", "globex", sid=acme_objects["sid"])

    assert client.get(url).status_code == 404
    assert client.post(url, _issue_data()).status_code == 404


# --- Tenant policy ----------------------------------------------------------------------


def _policy(**overrides) -> dict:
    return {
        "max_key_lifetime_days": "90",
        "default_key_lifetime_days": "7",
        "allow_non_expiring_keys": "",
        "revoke_unused_after_days": "",
        "leak_policy": "revoke_and_notify",
        "allowed_ips": "10.0.0.0/8\n192.0.2.1",
        "key_rate": "600/min",
    } | overrides


def test_an_owner_changes_the_key_policy(client, tenant, owner):
    factories.verify_session(client, owner)
    assert client.get(_url("keys:policy")).status_code == 200
    response = client.post(_url("keys:policy"), _policy())

    assert response.status_code == 302
    tenant.refresh_from_db()
    assert (tenant.max_key_lifetime_days, tenant.default_key_lifetime_days) == (90, 7)
    assert tenant.revoke_unused_after_days is None
    assert tenant.leak_policy == "revoke_and_notify"
    assert tenant.allowed_ips == ["10.0.0.0/8", "192.0.2.1/32"]
    assert tenant.key_rate == "600/min"
    event = _events("tenant.policy_changed").get()
    assert event.actor_id == str(owner.pk)
    assert event.metadata["changed"]["max_key_lifetime_days"] == [365, 90]


def test_the_policy_bounds_the_next_issue_form(client, tenant, owner, member):
    factories.verify_session(client, owner)
    client.post(_url("keys:policy"), _policy(max_key_lifetime_days="30"))
    factories.verify_session(client, member.user)
    html = client.get(_url("keys:issue")).content.decode()

    assert 'value="30"' in html and 'value="60"' not in html and 'value="365"' not in html


def test_the_policy_page_needs_a_fresh_second_factor(client, owner):
    factories.verify_session(client, owner, sudo=False)
    response = client.get(_url("keys:policy"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:sudo"))


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_admin_may_not_edit_the_policy(client, tenant, admin_member, method):
    factories.verify_session(client, admin_member.user)
    response = getattr(client, method)(_url("keys:policy"), _policy())

    assert response.status_code == 403
    tenant.refresh_from_db()
    assert tenant.max_key_lifetime_days == 365
    assert not _events("tenant.policy_changed").exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"default_key_lifetime_days": "120"}, "default_key_lifetime_days"),
        ({"max_key_lifetime_days": "0"}, "max_key_lifetime_days"),
        ({"max_key_lifetime_days": "many"}, "max_key_lifetime_days"),
        ({"allowed_ips": "10.0.0.0/8\n10.0.0.999"}, "allowed_ips"),
        ({"key_rate": "600 per minute"}, "key_rate"),
        ({"leak_policy": "shrug"}, "leak_policy"),
    ],
)
def test_invalid_policy_values_are_field_errors_and_change_nothing(
    client, tenant, owner, overrides, field
):
    factories.verify_session(client, owner)
    response = client.post(_url("keys:policy"), _policy(**overrides))

    assert response.status_code == 400
    assert list(response.context["form"].errors) == [field]
    tenant.refresh_from_db()
    assert tenant.max_key_lifetime_days == 365 and tenant.allowed_ips == []
    assert not _events("tenant.policy_changed").exists()


def test_tenant_home_links_to_keys_and_for_owners_to_the_policy(client, owner, member):
    factories.verify_session(client, owner)
    html = client.get(_url("accounts:tenant_home")).content.decode()
    assert _url("keys:list") in html and _url("keys:policy") in html

    factories.verify_session(client, member.user)
    html = client.get(_url("accounts:tenant_home")).content.decode()
    assert _url("keys:list") in html and _url("keys:policy") not in html
