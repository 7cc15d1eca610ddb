"""``{{ moment|ago }}``: "3 hours ago", "just now" (the exact time goes in a title beside it)."""

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def ago(value, now=None) -> str:
    """Return how long ago ``value`` was, to its largest unit ("3 hours ago", "just now")."""
    if not value:
        return ""
    now = now or timezone.now()
    if now - value < timezone.timedelta(minutes=1):
        return "just now"
    return f"{timesince(value, now, depth=1)} ago".replace("\xa0", " ")
