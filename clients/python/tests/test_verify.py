import base64
import json
import time

import pytest
from keyward_client.verify import InvalidToken, JWKSCache, KeywardVerifier

ISSUER = "https://keyward.example"
AUDIENCE = "https://reports.example"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def verifier_for(issuer, **options) -> KeywardVerifier:
    jwks = JWKSCache(
        f"{ISSUER}/.well-known/jwks.json",
        fetch=issuer.jwks,
        min_refresh_seconds=options.pop("min_refresh_seconds", 30),
        clock=options.pop("jwks_clock", time.monotonic),
    )
    return KeywardVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=jwks, **options)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_valid_token_gives_its_claims(issuer):
    claims = verifier_for(issuer).verify(issuer.token())
    assert claims["sub"] == "service_id:7" and claims["scope"] == "reports:read"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        (lambda now: {"aud": "https://other.example"}, "wrong_audience"),
        (lambda now: {"iss": "https://evil.example"}, "wrong_issuer"),
        (lambda now: {"exp": now - 120}, "expired"),
        (lambda now: {"nbf": now + 600}, "not_yet_valid"),
    ],
    ids=["wrong_audience", "wrong_issuer", "expired", "not_yet_valid"],
)
def test_claims_are_checked(issuer, claims, reason):
    # The times are taken when the test runs, not when it is collected: a long suite would
    # otherwise see the "future" nbf in the past.
    with pytest.raises(InvalidToken) as refused:
        verifier_for(issuer).verify(issuer.token(**claims(int(time.time()))))
    assert refused.value.reason == reason


def test_a_remembered_token_still_expires(issuer):
    clock_now = [time.time()]
    verifier = verifier_for(issuer, clock=lambda: clock_now[0])
    token = issuer.token()
    verifier.verify(token)
    clock_now[0] += 601 + 30
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(token)


def test_alg_none_and_hs256_with_the_public_key_are_refused(issuer):
    verifier = verifier_for(issuer)
    token = issuer.token()
    payload = token.split(".")[1]
    for header in ({"alg": "none", "kid": "k1"}, {"alg": "HS256", "kid": "k1"}):
        with pytest.raises(InvalidToken, match="unexpected_alg"):
            verifier.verify(f"{_b64(header)}.{payload}.")
    with pytest.raises(InvalidToken, match="invalid"):
        verifier.verify(token[:-4] + "AAAA")


def test_an_unknown_kid_refreshes_the_jwks_at_most_once_per_interval(issuer):
    clock = Clock()
    verifier = verifier_for(issuer, jwks_clock=clock, min_refresh_seconds=30)
    verifier.verify(issuer.token())
    assert issuer.fetches == 1
    clock.now += 31
    for n in range(20):
        with pytest.raises(InvalidToken, match="unknown_kid"):
            verifier.verify(issuer.token(kid="k1", headers={"kid": f"made-up-{n}"}))
    assert issuer.fetches == 2  # one refresh for twenty made-up kids
    issuer.add_key("k2")  # Keyward rotated
    with pytest.raises(InvalidToken, match="unknown_kid"):
        verifier.verify(issuer.token())  # within the interval: not fetched again
    clock.now += 31
    assert verifier.verify(issuer.token())["iss"] == ISSUER
    assert issuer.fetches == 3


def test_a_token_is_verified_once_then_remembered(issuer, monkeypatch):
    verifier = verifier_for(issuer)
    token = issuer.token()
    calls = []
    original = verifier._decoder.decode
    monkeypatch.setattr(
        verifier._decoder, "decode", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    for _ in range(5):
        verifier.verify(token)
    assert len(calls) == 1


def test_an_unreachable_jwks_refuses_tokens(issuer):
    def down(url):
        raise OSError("connection refused")

    verifier = KeywardVerifier(
        issuer=ISSUER, audience=AUDIENCE, jwks=JWKSCache("https://x/jwks", fetch=down)
    )
    with pytest.raises(InvalidToken, match="unknown_kid"):
        verifier.verify(issuer.token())


def test_malformed_tokens_are_refused(issuer):
    for token in ("", "a.b.c", "eyJ.eyJ.x", "x" * 50):
        with pytest.raises(InvalidToken):
            verifier_for(issuer).verify(token)
