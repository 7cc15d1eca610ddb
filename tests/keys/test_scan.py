from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from audit.services import Actor
from keys import services, tokens
from tests import factories

pytestmark = pytest.mark.django_db


def _scan(*paths):
    out = StringIO()
    call_command("keyward_scan", *map(str, paths), stdout=out)
    return out.getvalue()


def test_a_live_key_in_a_file_fails_the_scan_and_is_named_by_hint(tmp_path, tenant, owner):
    key, token = factories.make_api_key(owner, tenant)
    (tmp_path / "deploy.sh").write_text(f"#!/bin/sh\nexport KEYWARD_TOKEN={token}\n")
    out = StringIO()
    with pytest.raises(CommandError, match="1 live key"):
        call_command("keyward_scan", str(tmp_path), stdout=out)
    assert f"deploy.sh:2: {key.hint} active" in out.getvalue()
    assert token not in out.getvalue()
    event = AuditEvent.objects.get(action="key.scanned")
    assert event.actor_kind == "cli" and event.metadata["live"] == 1
    assert token not in str(event.metadata)


def test_revoked_and_unknown_tokens_are_reported_but_pass(tmp_path, tenant, owner):
    key, token = factories.make_api_key(owner, tenant)
    services.key_revoke(actor=Actor.cli("test"), key=key)
    stranger = tokens.generate(tokens.Kind.SERVICE)
    (tmp_path / "notes.md").write_text(f"old: {token}\nother: {stranger}\n")
    out = _scan(tmp_path / "notes.md")
    assert "notes.md:1:" in out and "revoked" in out
    assert "notes.md:2:" in out and "unknown to this installation" in out
    assert out.strip().endswith("2 token(s) found, none live.")


@pytest.mark.parametrize(
    "text",
    [
        "kwp_" + "a" * 38,  # the right shape, a wrong checksum
        "xkwp_{token}",  # part of a longer word
        "{token}x",
    ],
)
def test_lookalikes_are_not_reported(tmp_path, db, text):
    token = tokens.generate(tokens.Kind.PERSONAL)
    (tmp_path / "f.txt").write_text(text.format(token=token))
    assert _scan(tmp_path).strip() == "No tokens found."


def test_a_missing_path_is_a_clear_error(tmp_path, db):
    with pytest.raises(CommandError, match="No such file"):
        _scan(tmp_path / "nope")
