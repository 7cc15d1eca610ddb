"""Signals audit sends. Apps above audit listen to them; audit knows none of its listeners."""

from django.dispatch import Signal

# Sent with ``event`` (the AuditEvent just INSERTed) and ``target`` (the object recorded as its
# target, or None) by ``audit.record``, inside the caller's
# transaction: what a receiver writes commits with the event or not at all. A receiver that
# raises aborts the change that was being recorded.
event_recorded = Signal()
