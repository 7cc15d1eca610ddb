"""Property tests (Hypothesis) for the parsers of outside input not covered elsewhere.

Tokens, scope lists and audit cursors have theirs next to their modules (tests/keys/test_tokens.py,
tests/keys/test_scopes.py, tests/audit/test_api.py). Here: CIDR lists, request rates, expiry input,
request ids, e-mail invitations and the Authorization header of a whole API request. Each parser
either returns a well-formed value or refuses with a ValidationError (a 4xx on the web): never
another exception, never a 500.
"""

import ipaddress
import re
import string
from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from accounts import services as account_services
from accounts.forms import InviteForm
from accounts.models import Invitation, Membership, Tenant
from accounts.principals import Principal
from common.ratelimit import parse_rate
from common.request import REQUEST_ID_HEADER, parse_request_id
from keys import tokens
from keys.forms import (
    CUSTOM,
    EXPIRY_OUT_OF_RANGE,
    NEVER,
    PRESETS,
    KeyIssueForm,
    TenantPolicyForm,
)
from keys.networks import MAX_RANGES, ip_allowed, parse_cidrs
from keys.services import key_issue, key_rotate, validate_policy
from tests import factories

PURE = settings(max_examples=300, deadline=None, derandomize=True)
# Examples that go through the database share the test's data (and its transaction).
WITH_DB = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NOW = datetime(2030, 3, 10, 12, 0, tzinfo=UTC)

# --- CIDR lists (keys/networks.py) ---------------------------------------------------------------

addresses = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6))


@st.composite
def cidr_texts(draw) -> str:
    """A well-formed entry: an address, or an address with any valid prefix length."""
    address = draw(addresses)
    if draw(st.booleans()):
        return str(address)
    return f"{address}/{draw(st.integers(0, address.max_prefixlen))}"


separators = st.sampled_from([",", " ", "\n", "\r\n", ", ", "\t", ",,", " ,\n"])
junk = st.one_of(
    st.text(max_size=60),
    st.text(alphabet="0123456789abcdef.:/%", max_size=45),
    cidr_texts().map(lambda c: c + "/8"),
)


def _assert_normalised(networks: list[str]) -> None:
    assert len(networks) == len(set(networks)) <= MAX_RANGES
    for text in networks:
        network = ipaddress.ip_network(text)  # strict: host bits are clear
        assert str(network) == text


def _assert_parsed_or_refused(value) -> None:
    try:
        networks = parse_cidrs(value)
    except ValidationError as error:
        assert error.messages
        return
    _assert_normalised(networks)
    assert parse_cidrs(networks) == networks  # idempotent
    assert parse_cidrs("\n".join(networks)) == networks


@PURE
@given(value=st.one_of(st.text(), st.lists(st.one_of(st.text(), st.integers(), st.none()))))
def test_parse_cidrs_of_anything_is_normalised_or_a_validation_error(value):
    _assert_parsed_or_refused(value)


@PURE
@given(
    entries=st.lists(st.one_of(cidr_texts(), junk), max_size=8),
    separator=separators,
)
def test_parse_cidrs_of_cidr_like_text_is_normalised_or_a_validation_error(entries, separator):
    _assert_parsed_or_refused(separator.join(entries))


@PURE
@given(entries=st.lists(cidr_texts(), min_size=1, max_size=MAX_RANGES), separator=separators)
def test_well_formed_ranges_are_accepted_in_order_without_duplicates(entries, separator):
    expected = list(dict.fromkeys(str(ipaddress.ip_network(e, strict=False)) for e in entries))
    assert parse_cidrs(separator.join(entries)) == expected
    assert parse_cidrs(entries) == expected


@PURE
@given(entries=st.lists(cidr_texts(), min_size=1, max_size=5), ip=st.text(max_size=45))
def test_ip_allowed_never_raises(entries, ip):
    assert ip_allowed(ip, parse_cidrs(entries)) in (True, False)


@PURE
@given(entries=st.lists(cidr_texts(), min_size=1, max_size=5), address=addresses)
def test_ip_allowed_agrees_with_ipaddress(entries, address):
    networks = parse_cidrs(entries)
    inside = any(address in ipaddress.ip_network(n) for n in networks)
    assert ip_allowed(str(address), networks) is inside


# --- Request rates (config/ratelimit.py, the tenant policy form) -------------------------------


@PURE
@given(rate=st.one_of(st.text(max_size=25), st.from_regex(r"\A[0-9]{1,6}/[a-z]{1,4}\Z")))
def test_parse_rate_returns_a_positive_rate_or_raises_value_error(rate):
    try:
        count, seconds = parse_rate(rate)
    except ValueError:
        return
    assert count >= 1 and seconds in (1, 60, 3600, 86400)


def _policy_data(**overrides) -> dict:
    return {
        "max_key_lifetime_days": "365",
        "default_key_lifetime_days": "30",
        "leak_policy": "revoke",
        "allowed_ips": "",
        "key_rate": "",
    } | overrides


@PURE
@given(key_rate=st.text(max_size=30), allowed_ips=st.text(max_size=80))
def test_tenant_policy_form_refuses_bad_rates_and_ranges_as_form_errors(key_rate, allowed_ips):
    form = TenantPolicyForm(_policy_data(key_rate=key_rate, allowed_ips=allowed_ips))
    if form.is_valid():
        rate = form.cleaned_data["key_rate"]
        assert rate == "" or parse_rate(rate)
        _assert_normalised(form.cleaned_data["allowed_ips"])


# --- Expiry input (keys/forms.py KeyIssueForm, keys/services.py validate_policy) ----------------

MAX_DAYS = 2**31 - 1  # a PositiveIntegerField: what an operator may set in the admin


@st.composite
def tenants(draw) -> Tenant:
    longest = draw(st.one_of(st.integers(1, 3650), st.integers(1, MAX_DAYS)))
    default = draw(st.one_of(st.integers(1, min(longest, 3650)), st.integers(1, longest)))
    return Tenant(
        name="Acme",
        slug="acme",
        max_key_lifetime_days=longest,
        default_key_lifetime_days=default,
        allow_non_expiring_keys=draw(st.booleans()),
    )


expiry_choices = st.one_of(
    st.sampled_from([*map(str, PRESETS), CUSTOM, NEVER]),
    st.integers(-(10**12), 10**12).map(str),
    st.text(max_size=12),
)
dates = st.one_of(
    st.dates().map(lambda d: d.isoformat()),
    st.text(alphabet="0123456789-/. ", max_size=12),
    st.text(max_size=12),
)


@settings(PURE, max_examples=500)
@given(tenant=tenants(), data=st.data())
@example(
    tenant=Tenant(max_key_lifetime_days=MAX_DAYS, default_key_lifetime_days=MAX_DAYS),
    data=None,
)
def test_expiry_input_is_a_datetime_none_or_a_form_error(tenant, data):
    choice = data.draw(expiry_choices) if data else str(tenant.default_key_lifetime_days)
    day = data.draw(dates) if data else ""
    form = KeyIssueForm(
        {"name": "ci", "expiry": choice, "expiry_date": day, "scopes": ["keys:read"]},
        tenant=tenant,
        owner_role="owner",
        now=NOW,
    )
    if not form.is_valid():
        assert form.errors
        return
    expires_at = form.cleaned_data["expires_at"]
    assert expires_at is None or expires_at.tzinfo is not None
    # What the form lets through, the service either accepts or refuses in words.
    try:
        validate_policy(
            tenant=tenant,
            owner_role="owner",
            scopes=["keys:read"],
            expires_at=expires_at,
            allowed_ips=[],
            now=NOW,
        )
    except ValidationError as error:
        assert set(error.message_dict) == {"expires_at"}
    else:
        if expires_at is None:
            assert tenant.allow_non_expiring_keys
        else:
            assert NOW < expires_at


# --- Request ids (config/request.py) ------------------------------------------------------------

SAFE_FIRST = string.ascii_letters + string.digits
SAFE_REST = SAFE_FIRST + "._:-"


def _is_safe_request_id(value: str) -> bool:
    """The accepted form, spelled out independently of the module's regular expression."""
    return 1 <= len(value) <= 64 and value[0] in SAFE_FIRST and all(c in SAFE_REST for c in value)


request_ids = st.one_of(
    st.text(),
    st.text(alphabet=SAFE_REST, min_size=1, max_size=70),
    st.text(alphabet=SAFE_REST + "\n\r\x00 /é", min_size=1, max_size=66),
)


@PURE
@given(value=st.one_of(st.none(), request_ids))
@example(value="a" * 64)
@example(value="a" * 65)
@example(value="abc\n")
def test_a_request_id_is_accepted_exactly_when_it_is_safe(value):
    accepted = parse_request_id(value)
    if value is not None and _is_safe_request_id(value):
        assert accepted == value
    else:
        assert accepted is None


@pytest.mark.django_db
@WITH_DB
@given(value=st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=255), max_size=80))
def test_the_response_echoes_only_a_safe_request_id(client, value):
    response = client.get("/api/v1/whoami/", headers={REQUEST_ID_HEADER: value})
    sent_back = response[REQUEST_ID_HEADER]
    if _is_safe_request_id(value):
        assert sent_back == value
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", sent_back)


# --- E-mail invitations (accounts/forms.py InviteForm, accounts/services.py) ---------------------

emails = st.one_of(
    st.emails(),
    st.text(max_size=80),
    st.builds(
        lambda local, domain: f"{local}@{domain}",
        st.text(min_size=1, max_size=70),
        st.one_of(st.text(min_size=1, max_size=30), st.just("example.com")),
    ),
    st.emails().map(lambda e: e.upper()),
    st.emails().map(lambda e: f"  {e}\x00"),
    st.emails().map(lambda e: "x" * 250 + e),
)


@pytest.fixture
def owner_membership(tenant) -> Membership:
    return tenant.memberships.select_related("tenant", "user").get(role="owner")


@pytest.mark.django_db
@WITH_DB
@given(email=emails)
@example(email="a\x00b@example.com")
@example(email="İ" * 60 + "@example.com")
def test_invitation_create_with_any_email_invites_or_refuses_in_words(owner_membership, email):
    before = Invitation.objects.count()
    try:
        with transaction.atomic():
            invitation, link = account_services.invitation_create(
                actor=Principal.of_membership(owner_membership), email=email, role="member"
            )
    except ValidationError as error:
        assert error.messages and all(m.strip() for m in error.messages)
        assert Invitation.objects.count() == before
        return
    validate_email(invitation.email)
    assert invitation.email == invitation.email.lower()
    assert link.startswith("http")


@pytest.mark.django_db
@WITH_DB
@given(email=emails, role=st.one_of(st.sampled_from(["member", "owner"]), st.text(max_size=10)))
def test_invite_form_and_view_never_fail_with_a_500(client, owner, owner_membership, email, role):
    form = InviteForm({"email": email, "role": role}, actor_role="admin")
    if form.is_valid():
        validate_email(form.cleaned_data["email"])
    factories.verify_session(client, owner)
    response = client.post(
        f"/t/{owner_membership.tenant.slug}/members/invite/", {"email": email, "role": role}
    )
    assert response.status_code in (302, 400)


# --- The Authorization header of a whole API request ------------------------------------------


@st.composite
def authorization_headers(draw) -> bytes:
    """Anything a client may send: raw bytes, near-tokens, tokens with extra parts."""
    prefix = draw(st.sampled_from([b"Bearer ", b"bearer ", b"BEARER  ", b"Basic ", b"", b"Bearer"]))
    token = tokens.generate(draw(st.sampled_from(tokens.Kind)))
    body = draw(
        st.one_of(
            st.binary(max_size=80),
            st.text(alphabet=tokens.ALPHABET + "_", max_size=50).map(str.encode),
            st.just(token.encode()),
            st.just(token[:-1].encode() + b"x"),
            st.binary(max_size=8).map(lambda b: token.encode() + b" " + b),
            st.just(token.encode("utf-8") + "é".encode()),
        )
    )
    return draw(st.sampled_from([prefix + body, body]))


def _well_formed(header: bytes) -> bool:
    parts = header.split()
    if len(parts) != 2 or parts[0].lower() != b"bearer":
        return False
    try:
        return tokens.parse(parts[1].decode("ascii")) is not None
    except UnicodeDecodeError:
        return False


@pytest.mark.django_db
@settings(WITH_DB, max_examples=300)
@given(header=st.one_of(st.binary(max_size=120), authorization_headers()))
@example(header=b"Bearer \xff\xfe")
@example(header=b"Bearer a b")
@example(header=b"Bearer")
def test_any_authorization_header_is_a_401_and_a_malformed_one_costs_no_query(
    client, settings, header
):
    settings.KEYWARD_FAILED_AUTH_RATE = "1000000/min"  # this test is about parsing, not throttling
    # A WSGI server hands headers to Django as latin-1 text: every byte string is possible.
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/whoami/", HTTP_AUTHORIZATION=header.decode("latin-1"))
    assert response.status_code in (400, 401), (header, response.status_code)
    assert response.json()["code"] in ("not_authenticated", "invalid_token", "invalid_request")
    if not _well_formed(header):
        assert len(queries) == 0, [q["sql"] for q in queries]
    else:
        # An unknown but well-formed key: one lookup by digest, then its api.denied event.
        assert len(queries) <= 2


# --- Regressions: what these properties found ------------------------------------------------


@pytest.mark.django_db
def test_an_email_with_a_nul_byte_is_refused_before_any_query(owner_membership):
    # On PostgreSQL the membership lookup raised DataError (a 500) before full_clean() ran.
    with pytest.raises(ValidationError) as raised:
        account_services.invitation_create(
            actor=Principal.of_membership(owner_membership),
            email="a\x00b@example.com",
            role="member",
        )
    assert raised.value.message_dict == {"email": [account_services.INVALID_EMAIL]}


def test_a_default_lifetime_past_year_9999_is_a_form_error_not_a_500():
    # An operator may set any lifetime in the admin; now + 2**31 - 1 days overflowed.
    tenant = Tenant(max_key_lifetime_days=MAX_DAYS, default_key_lifetime_days=MAX_DAYS)
    data = {"name": "ci", "expiry": str(MAX_DAYS), "scopes": ["keys:read"]}
    form = KeyIssueForm(data, tenant=tenant, owner_role="owner", now=NOW)
    assert form.errors == {"expiry": [EXPIRY_OUT_OF_RANGE]}


@pytest.mark.django_db
def test_keys_of_a_tenant_with_a_lifetime_past_year_9999_issue_and_rotate(owner_membership):
    # validate_policy and key_rotate added the policy's days to now: OverflowError, a 500.
    tenant = owner_membership.tenant
    Tenant.objects.filter(pk=tenant.pk).update(
        max_key_lifetime_days=MAX_DAYS, default_key_lifetime_days=MAX_DAYS
    )
    tenant.refresh_from_db()
    actor = Principal.of_membership(owner_membership)
    key, _ = key_issue(
        actor=actor,
        tenant=tenant,
        owner=owner_membership.user,
        name="long",
        scopes=["keys:read"],
        expires_at=datetime(9999, 12, 30, tzinfo=UTC),
    )
    successor, _ = key_rotate(actor=actor, key=key)
    assert successor.expires_at <= datetime.max.replace(tzinfo=UTC)
    assert successor.expires_at > NOW
