"""rtclab.tokens: what a server may trust, and everything it must refuse."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtclab.tokens import MAX_TOKEN_BYTES, MAX_TTL_S, TokenError, check_name, new_secret, sign, verify

SECRET = b"k" * 32
NOW = 1_800_000_000


def test_round_trip_adds_expiry_and_id() -> None:
    token = sign(SECRET, {"room": "r1", "role": "host"}, ttl_s=60, now=NOW)
    claims = verify(SECRET, token, now=NOW + 59)
    assert claims["room"] == "r1" and claims["role"] == "host"
    assert claims["exp"] == NOW + 60
    assert len(claims["jti"]) == 16


def test_two_tokens_for_the_same_claims_differ() -> None:
    assert sign(SECRET, {"u": "a"}, 60, now=NOW) != sign(SECRET, {"u": "a"}, 60, now=NOW)


def test_expired_at_the_expiry_second() -> None:
    token = sign(SECRET, {}, ttl_s=60, now=NOW)
    with pytest.raises(TokenError, match="expired") as refused:
        verify(SECRET, token, now=NOW + 60)
    assert refused.value.status == 401


def test_another_secret_is_refused() -> None:
    token = sign(new_secret(), {"user": "ana"}, 60)
    with pytest.raises(TokenError, match="signature"):
        verify(SECRET, token)


def test_changed_claims_break_the_signature() -> None:
    payload, signature = sign(SECRET, {"role": "audience"}, 60, now=NOW).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "host"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenError, match="signature"):
        verify(SECRET, f"{forged}.{signature}", now=NOW)


@pytest.mark.parametrize("token", ["", "no-dot", "a.b.c", None, 42, "x" * (MAX_TOKEN_BYTES + 1), "é.ü"])
def test_malformed_tokens_are_refused(token: object) -> None:
    with pytest.raises(TokenError):
        verify(SECRET, token)


def test_signed_garbage_is_malformed_not_a_crash() -> None:
    # A payload that passes the signature check (the attacker has no secret, but a bug might) yet is not
    # a claims object: the parser must still answer with a TokenError.
    from rtclab.tokens import _b64, _signature

    for body in (b"[1,2]", b"not json", b'{"exp":"soon"}', b"{}"):
        payload = _b64(body)
        with pytest.raises(TokenError, match="malformed"):
            verify(SECRET, f"{payload}.{_signature(SECRET, payload)}", now=NOW)


@given(st.text(max_size=300))
def test_any_text_is_refused_with_a_token_error(text: str) -> None:
    with pytest.raises(TokenError):
        verify(SECRET, text)


@pytest.mark.parametrize("ttl", [0, -1, MAX_TTL_S + 1])
def test_lifetime_is_bounded(ttl: int) -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        sign(SECRET, {}, ttl)


def test_claims_cannot_set_their_own_expiry() -> None:
    with pytest.raises(ValueError, match="exp"):
        sign(SECRET, {"exp": NOW + 10**9}, 60)


def test_oversized_claims_are_refused_when_signing() -> None:
    with pytest.raises(ValueError, match="bytes"):
        sign(SECRET, {"note": "x" * MAX_TOKEN_BYTES}, 60)


@pytest.mark.parametrize("name", ["r1", "team_A-2", "a" * 64])
def test_names_accepted(name: str) -> None:
    assert check_name(name, "room") == name


@pytest.mark.parametrize("name", ["", "a" * 65, "room 1", "房间", "../etc", None, 7])
def test_names_refused_with_the_field(name: object) -> None:
    with pytest.raises(ValueError, match="^room must be"):
        check_name(name, "room")
