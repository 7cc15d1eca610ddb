from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from accounts.models import Tenant
from keys import forms
from keys.networks import BAD_CIDR
from keys.scopes import NO_SCOPES
from keys.services import GRACE_CHOICES

pytestmark = pytest.mark.django_db

NOW = datetime(2030, 3, 10, 12, 0, tzinfo=UTC)


def _tenant(**policy) -> Tenant:
    # Unsaved: the issue form only reads the policy.
    return Tenant(name="Acme", slug="acme", **policy)


def _issue_form(data=None, *, role="member", **policy):
    return forms.KeyIssueForm(data, tenant=_tenant(**policy), owner_role=role, now=NOW)


def _data(**overrides):
    return {"name": "ci", "expiry": "30", "scopes": ["keys:read"], "allowed_ips": ""} | overrides


def _expiry_values(form) -> list[str]:
    return [value for value, _ in form.fields["expiry"].choices]


def test_issue_form_offers_only_presets_within_the_longest_lifetime():
    form = _issue_form(max_key_lifetime_days=60, default_key_lifetime_days=30)
    assert _expiry_values(form) == ["7", "30", "60", "custom"]


def test_issue_form_offers_no_expiry_only_when_the_tenant_allows_it():
    assert "never" not in _expiry_values(_issue_form())
    assert "never" in _expiry_values(_issue_form(allow_non_expiring_keys=True))


def test_issue_form_preselects_the_tenant_default_lifetime():
    form = _issue_form(default_key_lifetime_days=90)
    assert form.fields["expiry"].initial == "90"
    assert dict(form.fields["expiry"].choices)["90"] == (
        f"90 days (tenant default): until {form.now + timedelta(days=90):%Y-%m-%d %H:%M} UTC"
    )


def test_issue_form_offers_a_default_lifetime_that_is_not_a_preset():
    form = _issue_form(max_key_lifetime_days=20, default_key_lifetime_days=14)
    assert _expiry_values(form) == ["7", "14", "custom"]
    assert form.fields["expiry"].initial == "14"


def test_issue_form_bounds_the_custom_date_picker_by_the_policy():
    attrs = _issue_form(max_key_lifetime_days=30).fields["expiry_date"].widget.attrs
    assert attrs["min"] == "2030-03-10"
    assert attrs["max"] == "2030-04-08"


def test_preset_expiry_becomes_now_plus_that_many_days():
    form = _issue_form(_data(expiry="7"))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["expires_at"] == NOW + timedelta(days=7)


def test_custom_date_means_the_end_of_that_day_utc():
    form = _issue_form(_data(expiry="custom", expiry_date="2030-04-01"))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["expires_at"] == datetime(2030, 4, 1, 23, 59, 59, tzinfo=UTC)


def test_custom_expiry_without_a_date_is_a_field_error():
    form = _issue_form(_data(expiry="custom"))
    assert not form.is_valid()
    assert form.errors["expiry_date"] == [forms.CUSTOM_DATE_REQUIRED]


def test_no_expiry_parses_to_none():
    form = _issue_form(_data(expiry="never"), allow_non_expiring_keys=True)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["expires_at"] is None


def test_issue_form_leaves_refusing_a_lifetime_beyond_policy_to_the_service():
    # "1 year" is not offered, but parses: key_issue words the refusal (EXPIRY_TOO_LONG).
    form = _issue_form(_data(expiry="365"), max_key_lifetime_days=30)
    assert "365" not in _expiry_values(form)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["expires_at"] == NOW + timedelta(days=365)


@pytest.mark.parametrize("value", ["", "3", "forever", "-1", "30 days"])
def test_unknown_expiry_choices_are_refused(value):
    form = _issue_form(_data(expiry=value))
    assert not form.is_valid()
    assert "expiry" in form.errors


def test_scope_checkboxes_stop_at_the_role_ceiling_and_describe_each_scope():
    member_scopes = dict(_issue_form(role="member").fields["scopes"].choices)
    assert "keys:read" in member_scopes
    assert "audit:read" not in member_scopes
    assert "service_ids:write" not in member_scopes
    assert "Read key metadata" in member_scopes["keys:read"]
    admin_scopes = dict(_issue_form(role="admin").fields["scopes"].choices)
    assert {"audit:read", "service_ids:write"} <= set(admin_scopes)


def test_scopes_are_required():
    form = _issue_form(_data(scopes=[]))
    assert not form.is_valid()
    assert form.errors["scopes"] == [NO_SCOPES]


def test_allowed_ips_text_becomes_a_list_of_normalised_ranges():
    form = _issue_form(_data(allowed_ips="10.0.0.7/24\r\n\r\n 2001:db8::1 \n203.0.113.9"))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["allowed_ips"] == ["10.0.0.0/24", "2001:db8::1/128", "203.0.113.9/32"]


def test_a_bad_allowed_ip_is_a_field_error_naming_it():
    form = _issue_form(_data(allowed_ips="10.0.0.0/8\nnot-an-ip"))
    assert not form.is_valid()
    assert form.errors["allowed_ips"] == [BAD_CIDR % {"value": "not-an-ip"}]


def test_service_errors_land_next_to_their_fields():
    form = _issue_form(_data())
    assert form.is_valid()
    form.add_service_error(
        ValidationError({"expires_at": ["too long"], "scopes": ["too broad"], "owner": ["x"]})
    )
    assert form.errors["expiry"] == ["too long"]
    assert form.errors["scopes"] == ["too broad"]
    assert form.non_field_errors() == ["x"]


def test_permission_denied_becomes_a_form_error():
    form = _issue_form(_data())
    assert form.is_valid()
    form.add_service_error(PermissionDenied("You may not manage this key."))
    assert form.non_field_errors() == ["You may not manage this key."]


def test_rotate_form_offers_the_services_grace_periods():
    form = forms.KeyRotateForm()
    assert [value for value, _ in form.fields["grace"].choices] == list(GRACE_CHOICES)
    assert forms.KeyRotateForm({"grace": "24h"}).is_valid()
    assert not forms.KeyRotateForm({"grace": "2d"}).is_valid()


def test_revoke_reason_is_optional_and_bounded():
    assert forms.KeyRevokeForm({"reason": ""}).is_valid()
    assert not forms.KeyRevokeForm({"reason": "x" * 201}).is_valid()


# --- Tenant policy --------------------------------------------------------------------------


def _policy(**overrides):
    return {
        "max_key_lifetime_days": "365",
        "default_key_lifetime_days": "30",
        "allow_non_expiring_keys": "",
        "revoke_unused_after_days": "180",
        "leak_policy": "revoke",
        "allowed_ips": "",
        "key_rate": "",
    } | overrides


def test_policy_form_parses_its_values_for_the_service():
    form = forms.TenantPolicyForm(
        _policy(
            allow_non_expiring_keys="on",
            revoke_unused_after_days="",
            allowed_ips="10.1.2.3/16\n192.0.2.1",
            key_rate=" 600/min ",
        )
    )
    assert form.is_valid(), form.errors
    assert form.cleaned_data == {
        "max_key_lifetime_days": 365,
        "default_key_lifetime_days": 30,
        "allow_non_expiring_keys": True,
        "revoke_unused_after_days": None,
        "leak_policy": "revoke",
        "allowed_ips": ["10.1.0.0/16", "192.0.2.1/32"],
        "key_rate": "600/min",
    }


def test_policy_form_starts_from_the_tenants_values():
    tenant = _tenant(allowed_ips=["10.0.0.0/8", "192.0.2.0/24"], key_rate="10/s")
    initial = forms.TenantPolicyForm.initial_for(tenant)
    assert initial["allowed_ips"] == "10.0.0.0/8\n192.0.2.0/24"
    assert initial["key_rate"] == "10/s"
    assert initial["max_key_lifetime_days"] == 365


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"default_key_lifetime_days": "400"}, "default_key_lifetime_days"),
        ({"max_key_lifetime_days": "0"}, "max_key_lifetime_days"),
        ({"max_key_lifetime_days": "99999999999"}, "max_key_lifetime_days"),
        ({"revoke_unused_after_days": "-5"}, "revoke_unused_after_days"),
        ({"leak_policy": "ignore"}, "leak_policy"),
        ({"allowed_ips": "10.0.0.0/33"}, "allowed_ips"),
        ({"key_rate": "fast"}, "key_rate"),
        ({"key_rate": "10/fortnight"}, "key_rate"),
        ({"key_rate": "0/min"}, "key_rate"),
        ({"key_rate": "/min"}, "key_rate"),
    ],
)
def test_policy_form_refuses_bad_values_next_to_their_field(overrides, field):
    form = forms.TenantPolicyForm(_policy(**overrides))
    assert not form.is_valid()
    assert list(form.errors) == [field]


def test_policy_form_says_why_the_default_cannot_exceed_the_longest_lifetime():
    form = forms.TenantPolicyForm(
        _policy(max_key_lifetime_days="30", default_key_lifetime_days="31")
    )
    assert form.errors["default_key_lifetime_days"] == [forms.DEFAULT_ABOVE_MAX]


def test_policy_form_names_the_rate_format():
    form = forms.TenantPolicyForm(_policy(key_rate="lots"))
    assert form.errors["key_rate"] == [forms.BAD_RATE]
