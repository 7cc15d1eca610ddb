"""E-mail text parts keep their lines whole: no quoted-printable ``=`` breaking a link."""

import email
import io
import re

import pytest
from django.core import mail as django_mail
from django.core.mail.backends.console import EmailBackend as ConsoleBackend

from accounts import services as account_services
from accounts.principals import Principal
from common.mail import EmailMessage, EmailMultiAlternatives, send_mail

LONG_URL = "https://keyward.example/invite/" + "x" * 120 + "/"


def _raw(message) -> str:
    return message.message().as_bytes().decode("utf-8")


@pytest.mark.parametrize("cls", [EmailMessage, EmailMultiAlternatives])
def test_a_long_link_stays_on_one_line_in_ascii_text(cls):
    raw = _raw(cls("Subject", f"Open {LONG_URL}\n", "a@example.com", ["b@example.com"]))
    assert LONG_URL in raw
    assert "Content-Transfer-Encoding: 7bit" in raw
    assert "quoted-printable" not in raw


def test_non_ascii_text_with_a_long_link_is_8bit_and_whole():
    body = f"Grüße, ouvrez {LONG_URL}\n"
    message = EmailMultiAlternatives("Sujet", body, "a@example.com", ["b@example.com"])
    raw = _raw(message)
    assert "Content-Transfer-Encoding: 8bit" in raw
    assert LONG_URL in raw
    parsed = email.message_from_bytes(message.message().as_bytes(), policy=email.policy.default)
    assert parsed.get_content() == body


def test_an_html_alternative_keeps_its_link_whole_too():
    message = EmailMultiAlternatives("S", f"{LONG_URL}\n", "a@example.com", ["b@example.com"])
    message.attach_alternative(f'<p><a href="{LONG_URL}">accept</a></p>', "text/html")
    raw = _raw(message)
    assert raw.count(LONG_URL) == 2
    assert "quoted-printable" not in raw


def test_a_line_longer_than_rfc_5322_allows_is_still_encoded():
    body = "y" * 1200 + "\n"
    raw = _raw(EmailMessage("S", body, "a@example.com", ["b@example.com"]))
    assert "Content-Transfer-Encoding: 7bit" not in raw
    assert "y" * 1200 not in raw  # wrapped by its encoding, as RFC 5322 requires


def test_send_mail_uses_whole_lines():
    django_mail.outbox = []
    assert send_mail("S", f"{LONG_URL}\n", None, ["b@example.com"]) == 1
    assert LONG_URL in _raw(django_mail.outbox[0])


@pytest.mark.django_db
def test_the_invitation_link_printed_by_the_console_backend_is_whole_and_opens(
    client, tenant, settings, django_capture_on_commit_callbacks
):
    settings.KEYWARD_BASE_URL = "https://keys.portal.example.com"
    django_mail.outbox = []
    inviter = Principal.of_membership(tenant.memberships.get(role="owner"))
    with django_capture_on_commit_callbacks(execute=True):
        _, link = account_services.invitation_create(
            actor=inviter, email="new.person@acme.example", role="member", context=None
        )
    line = next(x for x in django_mail.outbox[0].body.splitlines() if link in x)
    assert len(line) > 78  # long enough that quoted-printable would have broken it
    stream = io.StringIO()
    ConsoleBackend(stream=stream).send_messages(django_mail.outbox)
    printed = stream.getvalue()
    assert "=\n" not in printed and "=3D" not in printed
    found = re.search(r"(https?://\S+/invite/\S+)", printed)
    assert found is not None and found.group(1) == link
    response = client.get(found.group(1).removeprefix(settings.KEYWARD_BASE_URL))
    assert response.status_code == 302 and response.url.endswith("/invite/accept/")
