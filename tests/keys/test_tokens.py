import hashlib
import zlib

import pytest
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from keys import tokens
from keys.tokens import ALPHABET, Kind, ParsedToken, digest, generate, hint, parse

TOKEN_LENGTH = len("kwp_") + 32 + 6

kinds = st.sampled_from(Kind)
secrets_ = st.text(alphabet=ALPHABET, min_size=32, max_size=32)


@st.composite
def valid_tokens(draw: st.DrawFn) -> str:
    return tokens._assemble(draw(kinds), draw(secrets_))


def _base62_decode(text: str) -> int:
    value = 0
    for char in text:
        value = value * 62 + ALPHABET.index(char)
    return value


def test_known_token_is_pinned_so_the_format_never_drifts():
    token = "kwp_" + "0" * 32 + "3dvAlN"
    assert tokens._assemble(Kind.PERSONAL, "0" * 32) == token
    assert parse(token) == ParsedToken(kind=Kind.PERSONAL, token=token)


@given(kind=kinds)
def test_generated_token_round_trips(kind):
    token = generate(kind)
    assert len(token) == TOKEN_LENGTH
    assert token.startswith(f"kw{kind}_")
    assert set(token[4:]) <= set(ALPHABET)
    assert parse(token) == ParsedToken(kind=kind, token=token)


def test_generated_tokens_differ():
    assert len({generate(Kind.SERVICE) for _ in range(50)}) == 50


@given(token=valid_tokens())
def test_checksum_is_crc32_of_what_precedes_in_base62(token):
    assert _base62_decode(token[-6:]) == zlib.crc32(token[:-6].encode("ascii"))


@given(token=valid_tokens())
def test_digest_is_deterministic_sha256(token):
    assert digest(token) == digest(token) == hashlib.sha256(token.encode()).digest()
    assert len(digest(token)) == 32


def test_different_tokens_have_different_digests():
    assert digest(generate(Kind.PERSONAL)) != digest(generate(Kind.PERSONAL))


@given(token=valid_tokens(), data=st.data())
def test_any_single_character_substitution_is_rejected(token, data):
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    replacement = data.draw(st.sampled_from(ALPHABET + "_").filter(lambda c: c != token[position]))
    assert parse(token[:position] + replacement + token[position + 1 :]) is None


@given(token=valid_tokens(), length=st.integers(min_value=0, max_value=TOKEN_LENGTH - 1))
def test_truncated_token_is_rejected(token, length):
    assert parse(token[:length]) is None


@given(token=valid_tokens(), suffix=st.text(min_size=1))
def test_extended_token_is_rejected(token, suffix):
    assert parse(token + suffix) is None
    assert parse(suffix + token) is None


@given(raw=st.text())
def test_random_text_is_rejected(raw):
    assert parse(raw) is None


@given(kind=kinds, body=st.text(alphabet=ALPHABET, min_size=38, max_size=38))
def test_random_body_with_the_right_prefix_fails_the_checksum(kind, body):
    # A random 6-char tail matches the CRC with probability 1/62**6.
    assert parse(f"kw{kind}_{body}") is None


@pytest.mark.parametrize(
    "raw",
    [
        None,
        42,
        ["kwp_"],
        b"kwp_" + b"0" * 32 + b"3dvAlN",
        "kwx_" + "0" * 38,
        "KWP_" + "0" * 32 + "3dvAlN",
        "kwp_" + "0" * 32 + "3dvAlN\n",
        " kwp_" + "0" * 31 + "3dvAlN",
        "kwp_" + "0" * 31 + "٣" + "3dvAlN",
        "kwp_" + "0" * 31 + "é" + "3dvAlN",
        "kwp-" + "0" * 32 + "3dvAlN",
    ],
)
def test_malformed_input_returns_none(raw):
    assert parse(raw) is None


def test_hint_shows_prefix_kind_and_last_four_chars():
    token = tokens._assemble(Kind.SERVICE, "A" * 32)
    assert hint(token) == "kws_…" + token[-4:]
    assert parse(token).hint == hint(token)


def test_prefix_setting_is_read_at_call_time():
    default_token = generate(Kind.PERSONAL)
    with override_settings(KEYWARD_TOKEN_PREFIX="acme"):
        token = generate(Kind.PERSONAL)
        assert token.startswith("acmep_")
        assert len(token) == len("acmep_") + 38
        assert parse(token) == ParsedToken(kind=Kind.PERSONAL, token=token)
        assert parse(default_token) is None
        assert hint(token) == "acmep_…" + token[-4:]
    assert parse(token) is None
    assert parse(default_token) is not None
