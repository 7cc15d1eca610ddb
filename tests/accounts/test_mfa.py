"""Second-factor verification under django-otp's row lock: a code is accepted once, even when two
requests bring it at the same moment."""

import threading
import time

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.models import AuthenticatorDevice
from audit.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.usefixtures("fast_password_hasher")

_WAITING_FOR_A_LOCK = """
    SELECT EXISTS (
        SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE NOT l.granted AND a.datname = current_database() AND a.pid <> pg_backend_pid()
    )
"""


class Rendezvous:
    """Hold each request between reading its authenticator and checking the code until the other
    request has read it too, or waits for the row lock. Without the lock both requests read the
    same last time step (the race, every time); with it, the second reads after the first commits.
    """

    def __init__(self, parties: int = 2, patience: float = 10.0) -> None:
        self.parties, self.patience = parties, patience
        self.arrived = 0
        self.changed = threading.Condition()

    def _other_waits_for_a_lock(self) -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # pg_stat_activity, read afresh
            cursor.execute(_WAITING_FOR_A_LOCK)
            return cursor.fetchone()[0]

    def meet(self) -> None:
        with self.changed:
            self.arrived += 1
            self.changed.notify_all()
        deadline = time.monotonic() + self.patience
        while time.monotonic() < deadline:
            with self.changed:
                if self.changed.wait_for(lambda: self.arrived >= self.parties, timeout=0.01):
                    return
            if self._other_waits_for_a_lock():
                return


@pytest.mark.django_db(transaction=True)
def test_two_requests_with_the_same_code_pass_once(postgresql, tenant, owner, monkeypatch):
    clients = [Client(), Client()]
    for client in clients:
        response = client.post(
            reverse("accounts:login"), {"email": owner.email, "password": factories.PASSWORD}
        )
        assert response["Location"].startswith(reverse("accounts:mfa_verify"))
    rendezvous = Rendezvous()
    check = AuthenticatorDevice.verify_token

    def verify_token(device, token):
        rendezvous.meet()
        return check(device, token)

    monkeypatch.setattr(AuthenticatorDevice, "verify_token", verify_token)
    code = factories.totp_code(owner)
    start = threading.Barrier(len(clients))
    statuses = []

    def submit(client):
        try:
            start.wait()
            response = client.post(reverse("accounts:mfa_verify"), {"code": code})
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200, 302]
    assert AuditEvent.objects.filter(action="mfa.verified").count() == 1
    assert AuditEvent.objects.filter(action="mfa.verify_failed").count() == 1
