"""Test data built through the real services, so fixtures also produce audit events."""

import itertools
import time

from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP

from accounts import services
from accounts.decorators import SUDO_SESSION_KEY
from accounts.models import AuthenticatorDevice, Membership, Tenant, User
from accounts.principals import Principal
from audit.services import Actor

PASSWORD = "correct horse battery staple 42"
_seq = itertools.count(1)


def make_user(email: str | None = None, *, password: str = PASSWORD, totp: bool = True) -> User:
    user = User.objects.create_user(email or f"user{next(_seq)}@example.com", password)
    if totp:
        AuthenticatorDevice.objects.create(user=user, name="phone", confirmed=True)
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
    device = AuthenticatorDevice.objects.get(user=user, confirmed=True)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + offset_steps * device.step
    return f"{totp.token():0{device.digits}d}"


def verify_session(client, user: User, *, sudo: bool = True) -> None:
    """Log ``client`` in as ``user`` with a verified second factor (and fresh sudo)."""
    client.force_login(user)
    device = AuthenticatorDevice.objects.filter(user=user, confirmed=True).first()
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    if sudo:
        session[SUDO_SESSION_KEY] = time.time()
    session.save()


def make_service_id(tenant: Tenant, name: str = "deploy-bot", role: str = "member"):
    """Create a service ID through service_id_create, as the tenant's first owner."""
    creator = Membership.objects.select_related("tenant", "user").filter(
        tenant=tenant, role="owner"
    )[0]
    return services.service_id_create(actor=Principal.of_membership(creator), name=name, role=role)


def make_api_key(owner, tenant: Tenant | None = None, *, name: str | None = None, **options):
    """Issue a key through key_issue and return ``(api_key, plaintext)``.

    ``owner`` is a Membership or a User with ``tenant`` (a personal access token issued by its
    owner) or a ServiceID (a service key issued from the command line). Options: ``scopes``,
    ``days`` (lifetime), ``allowed_ips``.
    """
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import ServiceID
    from keys.services import key_issue

    if isinstance(owner, ServiceID):
        tenant, actor = owner.tenant, Actor.cli("test")
    else:
        if not isinstance(owner, Membership):
            owner = Membership.objects.select_related("tenant", "user").get(
                user=owner, tenant=tenant
            )
        tenant, actor, owner = owner.tenant, Principal.of_membership(owner), owner.user
    return key_issue(
        actor=actor,
        tenant=tenant,
        owner=owner,
        name=name or f"key {next(_seq)}",
        scopes=list(options.get("scopes", ["keys:read"])),
        expires_at=timezone.now() + timedelta(days=options.get("days", 30)),
        allowed_ips=options.get("allowed_ips", ()),
    )


# --- Leak reports (issue 8): a P-256 signer made for each test -------------------------------


def make_leak_signer():
    """Return ``(private_key, public_pem)``: an ECDSA P-256 key pair made for this test."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private_key = ec.generate_private_key(ec.SECP256R1())
    pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_key, pem.decode()


def sign_leak_report(private_key, body: bytes) -> str:
    """Return the base64 DER ECDSA/SHA-256 signature of ``body``, as Keyward-Signature wants."""
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    return base64.b64encode(private_key.sign(body, ec.ECDSA(hashes.SHA256()))).decode()


def drop_database_connection() -> None:
    """Terminate the default connection's backend from another connection, as a database
    restart, a failover or a proxy's idle timeout would (PostgreSQL)."""
    from django.db import DEFAULT_DB_ALIAS, connections

    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()
