"""Logging filters named in ``LOGGING`` (config/settings.py)."""

import logging


class ClientErrorsWithoutTraceback(logging.Filter):
    """Drop the traceback of a 4xx that ``django.request`` logs (a 403 from PermissionDenied, a
    404 from Http404): an answer the application chose is no crash, and its traceback buried the
    one line that says which path was refused. 5xx keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
