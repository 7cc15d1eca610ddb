"""Test data built through the real services, so fixtures also produce audit events."""

import itertools
import time

from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from accounts.decorators import SUDO_SESSION_KEY
from accounts.models import Membership, Tenant, User
from audit.services import Actor

PASSWORD = "correct horse battery staple 42"
_seq = itertools.count(1)


def make_user(email: str | None = None, *, password: str = PASSWORD, totp: bool = True) -> User:
    user = User.objects.create_user(email or f"user{next(_seq)}@example.com", password)
    if totp:
        TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    return user


def make_tenant(slug: str, owner: User | None = None) -> Tenant:
    owner = owner or make_user(f"owner@{slug}.example")
    tenant, _ = services.tenant_create(
        name=slug.title(), slug=slug, owner_email=owner.email, actor=Actor.cli("test")
    )
    return tenant


def add_member(tenant: Tenant, role: str, user: User | None = None) -> Membership:
    user = user or make_user(f"{role}{next(_seq)}@{tenant.slug}.example")
    return Membership.objects.create(user=user, tenant=tenant, role=role)


def totp_code(user: User, offset_steps: int = 0) -> str:
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + offset_steps * device.step
    return f"{totp.token():0{device.digits}d}"


def verify_session(client, user: User, *, sudo: bool = True) -> None:
    """Log ``client`` in as ``user`` with a verified second factor (and fresh sudo)."""
    client.force_login(user)
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    if sudo:
        session[SUDO_SESSION_KEY] = time.time()
    session.save()
