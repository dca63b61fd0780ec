"""Console sessions: signed, expiring, bound to one admin token; CSRF tokens."""

from __future__ import annotations

import time

import pytest
from itsdangerous import URLSafeTimedSerializer

from openglacier.console import session as sessions
from openglacier.console.app import ConsoleError
from openglacier.console.pages_auth import safe_next
from openglacier.console.pages_vaults import ArchiveFilter, _decode_cursor, _encode_cursor
from openglacier.console.session import ADMIN, KEY, SessionCodec, csrf_ok


def test_a_session_round_trips_and_holds_no_secret() -> None:
    codec = SessionCodec("token-1")
    made = codec.new(KEY, "OGAKEXAMPLE", "123456789012")
    cookie = codec.dump(made)
    assert codec.load(cookie) == made
    assert "secret" not in URLSafeTimedSerializer("x").loads_unsafe(cookie)[1]


def test_a_tampered_cookie_is_no_session() -> None:
    codec = SessionCodec("token-1")
    cookie = codec.dump(codec.new(ADMIN, "", "123456789012"))
    payload, signature = cookie.rsplit(".", 1)
    # The first character: all six of its bits are signature. The last of 27
    # base64 characters ends in two padding bits: "A" and "B" decode the same.
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert codec.load(f"{payload}.{flipped}") is None
    other = ("A" if payload[0] != "A" else "B") + payload[1:]
    assert codec.load(f"{other}.{signature}") is None
    assert codec.load("") is None
    assert codec.load("not-a-cookie") is None


def test_another_admin_token_ends_every_session() -> None:
    cookie = SessionCodec("token-1").dump(SessionCodec("token-1").new(ADMIN, "", "1" * 12))
    assert SessionCodec("token-2").load(cookie) is None


def test_an_expired_session_is_no_session(monkeypatch: pytest.MonkeyPatch) -> None:
    codec = SessionCodec("token-1")
    cookie = codec.dump(codec.new(KEY, "OGAKEXAMPLE", "123456789012"))
    later = time.time() + sessions.MAX_AGE + 5
    monkeypatch.setattr(time, "time", lambda: later)
    assert codec.load(cookie) is None


def test_csrf_token_must_match_the_sessions() -> None:
    made = SessionCodec("t").new(KEY, "OGAKEXAMPLE", "123456789012")
    assert csrf_ok(made, made.csrf)
    assert not csrf_ok(made, None)
    assert not csrf_ok(made, "")
    assert not csrf_ok(made, made.csrf + "x")
    assert not csrf_ok(made, SessionCodec("t").new(KEY, "OGAKEXAMPLE", "123456789012").csrf)


def test_the_sign_in_form_token_is_double_submitted_and_signed() -> None:
    codec = SessionCodec("t")
    token = codec.login_token()
    assert codec.login_token_valid(token, token)
    assert not codec.login_token_valid(token, None)
    assert not codec.login_token_valid(token, codec.login_token())  # not the cookie's
    assert not codec.login_token_valid("forged", "forged")  # not signed by us


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("/console/vaults/x", True),
        ("https://evil.example/console/", False),
        ("//evil.example/console/", False),
        ("/console\\..\\x", False),
        ("/other", False),
    ],
)
def test_sign_in_redirects_only_inside_the_console(value: str, kept: bool) -> None:
    assert (safe_next(value) == value) is kept


def test_archive_cursor_round_trips_and_bad_ones_are_a_clear_error() -> None:
    assert _decode_cursor(_encode_cursor("abc-_XYZ")) == "abc-_XYZ"
    for bad in ("%%%", _encode_cursor("a b"), _encode_cursor("") + "=="):
        with pytest.raises(ConsoleError) as info:
            _decode_cursor(bad)
        assert info.value.status == 400


def test_archive_filters_reject_bad_numbers_and_dates() -> None:
    with pytest.raises(ConsoleError, match="whole number"):
        ArchiveFilter.parse("", "12x", "", "", "")
    with pytest.raises(ConsoleError, match="YYYY-MM-DD"):
        ArchiveFilter.parse("", "", "", "yesterday", "")
    assert not ArchiveFilter.parse("", "", "", "", "").active
    assert ArchiveFilter.parse("x", "", "", "", "").active
