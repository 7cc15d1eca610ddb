import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from keys.scopes import (
    BUILTIN_SCOPES,
    NO_SCOPES,
    UNKNOWN_SCOPE,
    all_scopes,
    ceiling_for,
    describe,
    parse_scopes,
    scope_names,
)

BUILTIN_NAMES = sorted(BUILTIN_SCOPES)
EXTRA = {"billing:read": "Read invoices"}


def _unknown(scope: str) -> str:
    return UNKNOWN_SCOPE % {"scope": scope}


def test_registry_holds_the_builtin_scopes():
    assert scope_names() == {
        "keys:read",
        "keys:revoke",
        "service_ids:read",
        "service_ids:write",
        "members:read",
        "audit:read",
        "tokens:introspect",
    }
    assert all(all_scopes().values())
    assert describe("keys:read") == "Read key metadata (own keys; admins: the tenant's)"
    assert describe("keys:revoke") == "Revoke keys (own; admins: any in the tenant)"


def test_describe_unknown_scope_is_empty():
    assert describe("billing:read") == ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("keys:read", ["keys:read"]),
        ("keys:revoke,keys:read", ["keys:read", "keys:revoke"]),
        (" keys:read ,  keys:read audit:read ", ["audit:read", "keys:read"]),
        ("members:read,,service_ids:write\n", ["members:read", "service_ids:write"]),
        (["service_ids:read", " keys:read "], ["keys:read", "service_ids:read"]),
        (("audit:read", "audit:read"), ["audit:read"]),
        (iter(["members:read", ""]), ["members:read"]),
    ],
)
def test_parse_scopes_accepts_known_names(value, expected):
    assert parse_scopes(value) == expected


@pytest.mark.parametrize(
    ("value", "messages"),
    [
        ("", [NO_SCOPES]),
        (" , \t", [NO_SCOPES]),
        ([], [NO_SCOPES]),
        (["", "  "], [NO_SCOPES]),
        ("keys:write", [_unknown("keys:write")]),
        ("KEYS:READ", [_unknown("KEYS:READ")]),
        ("keys", [_unknown("keys")]),
        ("keys:read billing:read", [_unknown("billing:read")]),
        (["keys:read,audit:read"], [_unknown("keys:read,audit:read")]),
        ("zz:top aa:bottom", [_unknown("aa:bottom"), _unknown("zz:top")]),
    ],
)
def test_parse_scopes_rejects_bad_input(value, messages):
    with pytest.raises(ValidationError) as excinfo:
        parse_scopes(value)
    assert excinfo.value.messages == messages


def test_extra_scopes_from_settings_join_the_registry():
    with override_settings(KEYWARD_EXTRA_SCOPES=EXTRA):
        assert all_scopes() == {**BUILTIN_SCOPES, **EXTRA}
        assert describe("billing:read") == "Read invoices"
        assert parse_scopes("billing:read keys:read") == ["billing:read", "keys:read"]
        assert "billing:read" in ceiling_for("owner")
        assert "billing:read" not in ceiling_for("member")
    with pytest.raises(ValidationError):
        parse_scopes("billing:read")


def test_extra_scopes_cannot_redescribe_builtins():
    with override_settings(KEYWARD_EXTRA_SCOPES={"keys:read": "Something else"}):
        assert describe("keys:read") == BUILTIN_SCOPES["keys:read"]


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owner_and_admin_ceiling_is_every_scope(role):
    assert ceiling_for(role) == scope_names()


def test_member_ceiling_excludes_audit_and_writes():
    ceiling = ceiling_for("member")
    assert {"keys:read", "keys:revoke", "members:read", "service_ids:read"} <= ceiling
    assert "audit:read" not in ceiling
    assert "service_ids:write" not in ceiling


def test_auditor_ceiling_includes_audit_read():
    assert "audit:read" in ceiling_for("auditor")
    assert "service_ids:write" not in ceiling_for("auditor")


def test_unknown_role_has_an_empty_ceiling():
    assert ceiling_for("nobody") == frozenset()


def _assert_parsed_or_rejected(value):
    try:
        result = parse_scopes(value)
    except ValidationError:
        return
    assert result
    assert result == sorted(set(result))
    assert set(result) <= scope_names()


@given(value=st.text())
def test_parse_scopes_of_arbitrary_text_is_registry_subset_or_validation_error(value):
    _assert_parsed_or_rejected(value)


@given(value=st.lists(st.text()))
def test_parse_scopes_of_arbitrary_list_is_registry_subset_or_validation_error(value):
    _assert_parsed_or_rejected(value)


@given(
    names=st.lists(st.sampled_from(BUILTIN_NAMES), min_size=1),
    separators=st.lists(st.sampled_from([",", " ", ", ", "\n", ",,"]), min_size=1),
)
def test_parse_scopes_of_known_names_with_any_separators(names, separators):
    text = "".join(name + separators[i % len(separators)] for i, name in enumerate(names))
    assert parse_scopes(text) == sorted(set(names))
