"""E-mails are background tasks enqueued on commit: nothing is sent before the change commits,
nothing if it rolls back; the task table holds no plaintext link; a failed send is retried."""

from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import transaction
from django_tasks_db.models import DBTaskResult

from accounts import services as account_services
from accounts.models import Membership
from accounts.principals import Principal
from common import mail as common_mail

pytestmark = pytest.mark.usefixtures("fast_password_hasher")

DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def _owner(tenant) -> Principal:
    return Principal.of_membership(
        Membership.objects.select_related("tenant", "user").get(tenant=tenant, role="owner")
    )


@pytest.mark.django_db(transaction=True)
def test_an_email_is_enqueued_only_when_its_transaction_commits():
    with transaction.atomic():
        common_mail.send_on_commit("Subject", "Body", ["a@example.com"])
        assert mail.outbox == []  # not before the commit
    assert [m.to for m in mail.outbox] == [["a@example.com"]]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_change_sends_nothing(tenant):
    with pytest.raises(RuntimeError), transaction.atomic():
        account_services.invitation_create(
            actor=_owner(tenant), email="new@example.com", role="member"
        )
        raise RuntimeError("rolled back")
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_with_the_database_backend_a_worker_sends_it_and_the_row_holds_no_link(
    tenant, settings, postgresql
):
    settings.TASKS = DATABASE_TASKS
    _, link = account_services.invitation_create(
        actor=_owner(tenant), email="new@example.com", role="member"
    )
    assert mail.outbox == []  # the request did not send it: a worker will
    row = DBTaskResult.objects.get(task_path="common.mail.deliver_mail")
    stored = str(row.args_kwargs)
    assert link not in stored and link.rsplit("/", 2)[-2] not in stored
    assert "new@example.com" not in stored  # sealed
    call_command("db_worker", "--batch", "--no-startup-delay", stdout=StringIO())
    assert len(mail.outbox) == 1 and link in mail.outbox[0].body
    row.refresh_from_db()
    assert row.status == "SUCCESSFUL" and row.return_value == "sent"


@pytest.mark.django_db(transaction=True)
def test_a_failed_send_is_tried_again_later(settings, monkeypatch, postgresql):
    settings.TASKS = DATABASE_TASKS

    def down(*args, **kwargs):
        raise ConnectionRefusedError("SMTP is down")

    monkeypatch.setattr(common_mail, "send_mail", down)
    common_mail.enqueue("Subject", "Body", ["a@example.com"])
    call_command("db_worker", "--batch", "--no-startup-delay", stdout=StringIO())
    first, retry = DBTaskResult.objects.order_by("enqueued_at")
    assert first.return_value == "retrying"
    assert retry.status == "READY" and retry.args_kwargs["args"][1] == 2
    assert retry.run_after > first.finished_at  # backed off, not at once


@pytest.mark.django_db
def test_the_immediate_backend_runs_a_task_in_the_enqueuing_process():
    common_mail.enqueue("Subject", "Body", ["b@example.com", "a@example.com", "a@example.com"])
    assert [m.to for m in mail.outbox] == [["a@example.com", "b@example.com"]]


def test_sealed_arguments_do_not_open_under_another_secret_key(settings):
    sealed = common_mail._seal({"subject": "s", "body": "b", "to": ["x@example.com"]})
    assert common_mail._unseal(sealed)["to"] == ["x@example.com"]
    settings.SECRET_KEY = "another secret key of enough length for this test 1234"
    with pytest.raises(Exception):  # noqa: B017, PT011 (cryptography's InvalidTag)
        common_mail._unseal(sealed)


@pytest.mark.django_db(transaction=True)
def test_with_the_database_backend_a_rollback_leaves_no_task_row(tenant, settings, postgresql):
    settings.TASKS = DATABASE_TASKS
    with pytest.raises(RuntimeError), transaction.atomic():
        account_services.invitation_create(
            actor=_owner(tenant), email="new@example.com", role="member"
        )
        assert DBTaskResult.objects.count() == 1  # written in the transaction…
        raise RuntimeError("rolled back")
    assert not DBTaskResult.objects.exists()  # …and gone with it
    call_command("db_worker", "--batch", "--no-startup-delay", stdout=StringIO())
    assert mail.outbox == []
