"""A refused request (403, 404) is one log line without a traceback, not a traceback twice."""

import logging
import sys

import pytest
from django.test import Client

from tests import factories

pytestmark = pytest.mark.django_db


def _handlers_reached(record: logging.LogRecord) -> list[logging.Handler]:
    """The handlers a record logged on ``record.name`` is written by (as Logger.callHandlers)."""
    reached, logger = [], logging.getLogger(record.name)
    while logger is not None:
        reached += [
            h
            for h in logger.handlers
            if not type(h).__module__.startswith("_pytest")  # pytest's own capture
            and record.levelno >= h.level
            and h.filter(record)
        ]
        logger = logger.parent if logger.propagate else None
    return reached


def _request_records(caplog):
    return [r for r in caplog.records if r.name == "django.request"]


def test_a_403_is_logged_once_without_a_traceback(settings, caplog, member):
    settings.DEBUG = True  # where Django's own console handler printed it a second time
    client = Client()
    factories.verify_session(client, member.user)
    with caplog.at_level(logging.INFO):
        assert client.get("/t/acme/policy/").status_code == 403
    [record] = _request_records(caplog)
    assert record.getMessage() == "Forbidden (Permission denied): /t/acme/policy/"
    assert record.exc_info is None and record.exc_text is None
    assert len(_handlers_reached(record)) == 1


def test_a_404_is_logged_once_without_a_traceback(settings, caplog, owner_client):
    settings.DEBUG = True
    with caplog.at_level(logging.INFO):
        assert owner_client.get("/t/acme/keys/999999/").status_code == 404
    [record] = _request_records(caplog)
    assert record.exc_info is None
    assert len(_handlers_reached(record)) == 1


def test_a_500_keeps_its_traceback():
    record = logging.LogRecord(
        "django.request", logging.ERROR, __file__, 1, "Internal Server Error", (), None
    )
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record.exc_info = sys.exc_info()
    record.status_code = 500
    for logger_filter in logging.getLogger("django.request").filters:
        assert logger_filter.filter(record)
    assert record.exc_info is not None
