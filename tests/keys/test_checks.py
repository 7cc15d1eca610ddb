import pytest
from django.test import override_settings

from keys.checks import check_keyward_settings


def _ids(**settings):
    with override_settings(**settings):
        return [error.id for error in check_keyward_settings(None)]


def test_default_settings_pass():
    assert check_keyward_settings(None) == []


@pytest.mark.parametrize("prefix", ["k", "kw", "acme", "a1b2c3d4"])
def test_valid_prefix_passes(prefix):
    assert _ids(KEYWARD_TOKEN_PREFIX=prefix) == []


@pytest.mark.parametrize(
    "prefix", ["", "Kw", "1kw", "k_w", "kw-", "abcdefghi", "kŵ", "kw\n", None, 42]
)
def test_invalid_prefix_is_e001(prefix):
    assert _ids(KEYWARD_TOKEN_PREFIX=prefix) == ["keyward.E001"]


def test_valid_extra_scopes_pass():
    assert _ids(KEYWARD_EXTRA_SCOPES={"billing:read": "Read invoices", "ci_runs:start": "x"}) == []


@pytest.mark.parametrize("extra", [["billing:read"], "billing:read", None])
def test_extra_scopes_that_are_not_a_dict_is_e002(extra):
    assert _ids(KEYWARD_EXTRA_SCOPES=extra) == ["keyward.E002"]


@pytest.mark.parametrize(
    "name", ["billing", "Billing:read", "billing:", ":read", "billing:read:all", "bill ing:read", 5]
)
def test_malformed_extra_scope_name_is_e003(name):
    assert _ids(KEYWARD_EXTRA_SCOPES={name: "Read invoices"}) == ["keyward.E003"]


def test_extra_scope_redefining_a_builtin_is_e004():
    assert _ids(KEYWARD_EXTRA_SCOPES={"keys:read": "Mine now"}) == ["keyward.E004"]


@pytest.mark.parametrize("description", ["", "   ", None, 3, ["Read invoices"]])
def test_extra_scope_without_a_description_is_e005(description):
    assert _ids(KEYWARD_EXTRA_SCOPES={"billing:read": description}) == ["keyward.E005"]


def test_all_problems_are_reported_at_once():
    ids = _ids(KEYWARD_TOKEN_PREFIX="KW", KEYWARD_EXTRA_SCOPES={"Bad": ""})
    assert ids == ["keyward.E001", "keyward.E003", "keyward.E005"]
