"""Turn service errors and unknown names into CommandError, so operators read messages, not
tracebacks."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import CommandError

from accounts.models import Tenant

NO_SUCH_TENANT = "No tenant with slug %r."


def tenant_get(slug: str) -> Tenant:
    """Return the tenant with ``slug``; raise CommandError if there is none."""
    try:
        return Tenant.objects.get(slug=slug)
    except Tenant.DoesNotExist:
        raise CommandError(NO_SUCH_TENANT % slug) from None


def command_error(error: ValidationError | PermissionDenied) -> CommandError:
    """Return a CommandError that names each refused field and its messages."""
    if isinstance(error, ValidationError) and hasattr(error, "error_dict"):
        parts = [
            f"{field}: {' '.join(messages)}" if field != "__all__" else " ".join(messages)
            for field, messages in error.message_dict.items()
        ]
        return CommandError("; ".join(parts))
    if isinstance(error, ValidationError):
        return CommandError(" ".join(error.messages))
    return CommandError(str(error))
