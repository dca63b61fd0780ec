"""Identifiers (spec 1.4): lengths, alphabet, uniqueness."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from openglacier import ids
from openglacier.storage.blobs import is_valid_key

_ALPHABET = re.compile(r"\A[A-Za-z0-9_-]+\Z")

_GENERATORS: list[tuple[Callable[[], str], int]] = [
    (ids.new_archive_id, 138),
    (ids.new_job_id, 92),
    (ids.new_upload_id, 92),
    (ids.new_lock_id, 24),
    (ids.new_capacity_id, 24),
    (ids.new_request_id, 47),
]
_NAMES = ["archive", "job", "upload", "lock", "capacity", "request"]


@pytest.mark.parametrize(("generate", "length"), _GENERATORS, ids=_NAMES)
def test_length_and_alphabet(generate: Callable[[], str], length: int) -> None:
    for _ in range(500):
        value = generate()
        assert len(value) == length
        assert _ALPHABET.match(value), value
        assert ids.looks_like_id(value, length)


@pytest.mark.parametrize(("generate", "length"), _GENERATORS, ids=_NAMES)
def test_unique_over_many_draws(generate: Callable[[], str], length: int) -> None:
    draws = 20_000
    assert len({generate() for _ in range(draws)}) == draws


def test_length_constants_match_the_spec() -> None:
    assert ids.ARCHIVE_ID_LEN == 138
    assert ids.JOB_ID_LEN == ids.UPLOAD_ID_LEN == 92
    assert ids.LOCK_ID_LEN == ids.CAPACITY_ID_LEN == 24
    assert ids.REQUEST_ID_LEN == 47


def test_whole_alphabet_is_used() -> None:
    """The ids are base64url, not hex in disguise: every symbol shows up."""
    seen = set("".join(ids.new_archive_id() for _ in range(200)))
    assert seen == set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_account_id_is_twelve_digits() -> None:
    for _ in range(2000):
        account = ids.new_account_id()
        assert re.fullmatch(r"[1-9][0-9]{11}", account), account


def test_blob_keys_satisfy_the_blob_store_key_rule() -> None:
    keys = {ids.new_blob_key() for _ in range(1000)}
    assert len(keys) == 1000
    assert all(len(k) == ids.BLOB_KEY_LEN and is_valid_key(k) for k in keys)


def test_access_keys() -> None:
    key = ids.new_access_key_id()
    assert re.fullmatch(r"OGAK[A-Z2-7]{16}", key)
    secret = ids.new_secret_access_key()
    assert len(secret) == 40
    assert _ALPHABET.match(secret)


@pytest.mark.parametrize(
    ("value", "length", "ok"),
    [
        ("a" * 24, 24, True),
        ("-" + "a" * 23, 24, True),
        ("a" * 23, 24, False),
        ("a" * 23 + "=", 24, False),
        ("a" * 23 + "/", 24, False),
        ("a" * 23 + "\n", 24, False),
        ("", 0, False),
    ],
)
def test_looks_like_id(value: str, length: int, ok: bool) -> None:
    assert ids.looks_like_id(value, length) is ok


def test_ids_never_start_with_a_dash() -> None:
    # `aws glacier abort-multipart-upload --upload-id -Ab...` fails in argparse;
    # without the rule one ID in 64 would, so 5,000 would all but surely hit it.
    made = [ids.new_upload_id() for _ in range(5000)] + [ids.new_job_id() for _ in range(5000)]
    assert not [i for i in made if i.startswith("-")]
    assert all(len(i) == ids.UPLOAD_ID_LEN for i in made)
