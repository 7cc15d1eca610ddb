"""E-mails about keys: who is told, what they read. Each e-mail is a task enqueued on the commit
of the transaction that recorded its audit event, so a rolled-back change never e-mails anyone
and a committed one e-mails once.

An e-mail never holds a token: only the key's name, its hint and links into the portal.
"""

from django.urls import reverse

from accounts import roles
from accounts.models import Membership
from accounts.services import absolute_url
from common import mail
from keys.models import ApiKey


def tenant_key_managers(tenant) -> list[str]:
    """Return the e-mail addresses of the tenant's active members who may manage every key
    (owners and admins)."""
    manager_roles = [
        role for role in roles.Role.values if roles.may(role, roles.Action.KEYS_MANAGE_ALL)
    ]
    return list(
        Membership.objects.for_tenant(tenant)
        .filter(role__in=manager_roles, user__is_active=True)
        .order_by("user__email")
        .values_list("user__email", flat=True)
    )


def key_contacts(key: ApiKey) -> list[str]:
    """Return who answers for ``key``: its owner, or for a service key (or the key of someone
    no longer an active member) the tenant's owners and admins."""
    if key.user_id is not None and key.user.is_active:
        if Membership.objects.filter(user_id=key.user_id, tenant_id=key.tenant_id).exists():
            return [key.user.email]
    return tenant_key_managers(key.tenant)


def key_link(key: ApiKey, page: str = "detail") -> str:
    """Return the absolute portal URL of the key's ``page`` (detail, rotate, revoke)."""
    return absolute_url(reverse(f"keys:{page}", kwargs={"slug": key.tenant.slug, "pk": key.pk}))


def send_on_commit(subject: str, body: str, recipients: list[str]) -> None:
    """Send one e-mail to ``recipients`` once the current transaction commits, as a
    background task (``common.mail``): a cron run or a request never waits on the mail server,
    and a mail server that is down never turns a committed change into a failure.
    """
    mail.send_on_commit(subject, body, recipients, what="a key notification")


def _describe(key: ApiKey) -> str:
    return (
        f"Key: {key.name} ({key.hint})\n"
        f"Owner: {key.owner_description}\n"
        f"Tenant: {key.tenant.name} ({key.tenant.slug})\n"
    )


def expiry_warning(key: ApiKey, days: int, recipients: list[str]) -> None:
    when = "tomorrow" if days == 1 else f"in {days} days"
    send_on_commit(
        f"Keyward: the key “{key.name}” ({key.hint}) expires {when}",
        f"{_describe(key)}Expires: {key.expires_at:%Y-%m-%d %H:%M} UTC\n\n"
        f"Whatever uses this key stops working then. Rotate it before it expires, then put the\n"
        f"new key where the old one is used:\n\n{key_link(key, 'rotate')}\n",
        recipients,
    )


def unused_revoked(key: ApiKey, days: int, recipients: list[str]) -> None:
    last = f"{key.last_used_at:%Y-%m-%d}" if key.last_used_at else "never"
    send_on_commit(
        f"Keyward: the key “{key.name}” ({key.hint}) was revoked after {days} days unused",
        f"{_describe(key)}Last used: {last}\n\n"
        f"Your tenant's policy revokes keys nobody used for {days} days. If something still\n"
        f"needs this key, issue a new one in the portal:\n\n{key_link(key)}\n",
        recipients,
    )


def unused_warning(key: ApiKey, days: int, revoke_at, recipients: list[str]) -> None:
    last = f"{key.last_used_at:%Y-%m-%d}" if key.last_used_at else "never"
    send_on_commit(
        f"Keyward: the key “{key.name}” ({key.hint}) will be revoked on {revoke_at:%Y-%m-%d}"
        " unless it is used",
        f"{_describe(key)}Last used: {last}\nRevoked on: {revoke_at:%Y-%m-%d %H:%M} UTC\n\n"
        f"Your tenant's policy revokes keys nobody used for {days} days. If something still\n"
        f"needs this key, use it before then (any request counts); if nothing does, revoke it\n"
        f"now:\n\n{key_link(key)}\n",
        recipients,
    )


def new_network(key: ApiKey, network: str, ip: str, recipients: list[str]) -> None:
    send_on_commit(
        f"Keyward: the key “{key.name}” ({key.hint}) was used from a new network",
        f"{_describe(key)}Network: {network} (address {ip})\n\n"
        f"This key had never been used from this network. If you do not recognise it, revoke\n"
        f"the key now and issue a new one:\n\n{key_link(key)}\n",
        recipients,
    )


def leak_found(key: ApiKey, where: dict, action: str, recipients: list[str]) -> None:
    lines = [f"{label}: {where[field]}" for field, label in _WHERE if where.get(field)]
    done = {
        "revoked": "Keyward revoked the key.",
        "revoked_and_notified": "Keyward revoked the key.",
        "notified": "Your tenant's policy is to notify only: the key still works. Revoke it now.",
    }.get(action, "")
    send_on_commit(
        f"Keyward: the key “{key.name}” ({key.hint}) was found in public",
        f"{_describe(key)}" + "\n".join(lines) + f"\n\n{done}\n\n"
        f"Anyone who saw it could have used it: check the key's recent requests, then issue a\n"
        f"new key and keep it out of code, URLs and logs.\n\n{key_link(key)}\n",
        recipients,
    )


_WHERE = (("source", "Found by"), ("type", "Reported as"), ("url", "Where"))
