"""TOTP seeds at rest: sealed with AES-256-GCM (accounts/crypto.py), never in clear."""

import base64

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY, devices_for_user
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts import crypto
from accounts.models import AuthenticatorDevice
from audit.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.usefixtures("fast_password_hasher")


def _seed_forms(seed: bytes) -> list[str]:
    b32 = base64.b32encode(seed).decode()
    return [seed.hex(), seed.hex().upper(), b32, b32.rstrip("="), b32.lower().rstrip("=")]


# --- seal / unseal --------------------------------------------------------------------------


@hypothesis_settings(max_examples=200, derandomize=True, deadline=None)
@given(plaintext=st.binary(max_size=256), context=st.binary(max_size=64))
def test_seal_then_unseal_gives_back_the_plaintext(plaintext, context):
    sealed = crypto.seal(plaintext, context=context)
    assert sealed.startswith(f"{crypto.VERSION}.")
    assert crypto.unseal(sealed, context=context) == plaintext
    if len(plaintext) >= 4:
        assert plaintext.hex() not in sealed


def test_sealing_twice_gives_two_different_values():
    assert crypto.seal(b"seed") != crypto.seal(b"seed")


def test_the_sealed_value_names_its_version_and_key():
    version, key_id, body = crypto.seal(b"seed").split(".")
    assert version == "v1" and len(key_id) == 8 and int(key_id, 16) >= 0 and body


@pytest.mark.parametrize("position", [0, 5, 17, -3, -1])
def test_a_tampered_value_is_refused(position):
    sealed = crypto.seal(b"0123456789abcdefghij")
    prefix_len = sealed.rindex(".") + 1
    body = list(sealed[prefix_len:])
    index = position % len(body)
    body[index] = "A" if body[index] != "A" else "B"
    tampered = sealed[:prefix_len] + "".join(body)
    with pytest.raises(crypto.UnsealError):
        crypto.unseal(tampered)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "v1",
        "v1..",
        "v2.00000000.AAAA",
        "v1.zz.AAAA",
        "v1.{kid}.",
        "v1.{kid}.AA==",
        "v1.{kid}.é",
    ],
)
def test_malformed_values_are_refused(garbage):
    key_id = crypto.seal(b"x").split(".")[1]
    with pytest.raises(crypto.UnsealError):
        crypto.unseal(garbage.format(kid=key_id))


def test_a_value_does_not_unseal_in_another_context():
    sealed = crypto.seal(b"seed", context=b"user:1")
    with pytest.raises(crypto.UnsealError):
        crypto.unseal(sealed, context=b"user:2")


def test_a_value_sealed_under_another_key_is_refused_with_its_key_id(settings):
    sealed = crypto.seal(b"seed")
    settings.KEYWARD_FIELD_ENCRYPTION_KEY = "k" * 43
    with pytest.raises(crypto.UnsealError, match="sealed under key"):
        crypto.unseal(sealed)


def test_by_default_the_key_is_derived_from_secret_key(settings):
    settings.KEYWARD_FIELD_ENCRYPTION_KEY = ""
    sealed = crypto.seal(b"seed")
    settings.SECRET_KEY = settings.SECRET_KEY + "-rotated"
    with pytest.raises(crypto.UnsealError):
        crypto.unseal(sealed)


def test_a_dedicated_key_does_not_depend_on_secret_key(settings):
    settings.KEYWARD_FIELD_ENCRYPTION_KEY = "a dedicated key, at least 32 characters long"
    sealed = crypto.seal(b"seed")
    settings.SECRET_KEY = settings.SECRET_KEY + "-rotated"
    assert crypto.unseal(sealed) == b"seed"


def test_a_short_dedicated_key_is_a_configuration_error(settings):
    settings.KEYWARD_FIELD_ENCRYPTION_KEY = "too short"
    with pytest.raises(ImproperlyConfigured):
        crypto.seal(b"seed")


# --- the device -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_stored_row_never_holds_the_seed(owner):
    device = AuthenticatorDevice.objects.get(user=owner)
    seed = device.bin_key
    assert len(seed) == 20
    with connection.cursor() as cursor:
        table = connection.ops.quote_name(AuthenticatorDevice._meta.db_table)
        cursor.execute(f"SELECT * FROM {table} WHERE id = %s", [device.pk])  # noqa: S608
        row = " ".join(str(value) for value in cursor.fetchone())
    assert device.sealed_seed in row
    for form in _seed_forms(seed):
        assert form not in row
    assert not any(f.name in {"key", "seed"} for f in AuthenticatorDevice._meta.fields)


@pytest.mark.django_db
def test_each_device_gets_its_own_random_seed(owner):
    other = AuthenticatorDevice.objects.create(user=owner, name="tablet", confirmed=True)
    assert other.bin_key != AuthenticatorDevice.objects.get(user=owner, name="phone").bin_key


@pytest.mark.django_db
def test_a_seed_copied_to_another_users_device_does_not_unseal(owner, member):
    mine = AuthenticatorDevice.objects.get(user=owner)
    theirs = AuthenticatorDevice.objects.get(user=member.user)
    AuthenticatorDevice.objects.filter(pk=theirs.pk).update(sealed_seed=mine.sealed_seed)
    theirs.refresh_from_db()
    with pytest.raises(crypto.UnsealError):
        theirs.bin_key  # noqa: B018


@pytest.mark.django_db
def test_django_otp_finds_only_keyward_devices(owner):
    kinds = {type(device).__name__ for device in devices_for_user(owner, confirmed=None)}
    assert kinds == {"AuthenticatorDevice"}
    device = AuthenticatorDevice.objects.get(user=owner)
    assert device.persistent_id == f"accounts.authenticatordevice/{device.pk}"


@pytest.mark.django_db
def test_config_url_carries_the_seed_and_the_issuer(owner, settings):
    settings.OTP_TOTP_ISSUER = "Key:ward"
    device = AuthenticatorDevice.objects.get(user=owner)
    secret = base64.b32encode(device.bin_key).decode()
    url = device.config_url
    assert url.startswith("otpauth://totp/Keyward%3Aowner%40acme.example?")
    assert f"secret={secret}" in url
    assert "algorithm=SHA1&digits=6&period=30&issuer=Keyward" in url


@pytest.mark.django_db
def test_end_to_end_login_with_the_sealed_seed_and_a_code_only_once(client, owner):
    login = {"email": owner.email, "password": factories.PASSWORD}
    assert client.post(reverse("accounts:login"), login).status_code == 302
    code = factories.totp_code(owner)
    response = client.post(reverse("accounts:mfa_verify"), {"code": code})
    assert response.status_code == 302
    assert client.get(reverse("accounts:home")).status_code in (200, 302)
    device = AuthenticatorDevice.objects.get(user=owner)
    assert device.last_t >= 0 and device.throttling_failure_count == 0
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    again = factories.totp_code(owner)
    assert again == code and not device.verify_token(code)  # replay refused (last_t)


@pytest.mark.django_db
def test_a_code_one_step_off_is_accepted_and_two_are_not(owner):
    device = AuthenticatorDevice.objects.get(user=owner)
    assert not device.verify_token(factories.totp_code(owner, offset_steps=2))
    device.throttle_reset()
    assert device.verify_token(factories.totp_code(owner, offset_steps=1))


# --- the admin: metadata only ---------------------------------------------------------------


@pytest.fixture
def operator_client(client, db):
    operator = factories.make_user("ops@example.com")
    operator.is_staff = operator.is_superuser = True
    operator.save(update_fields=["is_staff", "is_superuser"])
    factories.verify_session(client, operator)
    return client


@pytest.mark.django_db
def test_the_admin_shows_metadata_and_never_the_seed(operator_client, owner):
    device = AuthenticatorDevice.objects.get(user=owner)
    changelist = operator_client.get(reverse("admin:accounts_authenticatordevice_changelist"))
    change = operator_client.get(
        reverse("admin:accounts_authenticatordevice_change", args=[device.pk])
    )
    for response in (changelist, change):
        assert response.status_code == 200
        html = response.content.decode()
        assert owner.email in html
        assert device.sealed_seed not in html
        for form in _seed_forms(device.bin_key):
            assert form not in html
    assert operator_client.get(reverse("admin:accounts_authenticatordevice_add")).status_code == 403
    operator_client.post(
        reverse("admin:accounts_authenticatordevice_change", args=[device.pk]), {"name": "x"}
    )
    device.refresh_from_db()
    assert device.name == "phone"


@pytest.mark.django_db
def test_an_operator_deletes_a_lost_authenticator_and_it_is_audited(operator_client, owner):
    device = AuthenticatorDevice.objects.get(user=owner)
    url = reverse("admin:accounts_authenticatordevice_delete", args=[device.pk])
    assert operator_client.post(url, {"post": "yes"}).status_code == 302
    assert not AuthenticatorDevice.objects.filter(pk=device.pk).exists()
    event = AuditEvent.objects.get(action="admin.deleted")
    assert event.target_id == str(owner.pk)
    assert event.metadata["model"] == "accounts.AuthenticatorDevice"
