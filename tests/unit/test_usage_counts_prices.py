"""The usage report's pieces: the in-memory counts (metrics/usage.py), the
price table and the cost estimate (domain/usage_report.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from openglacier.domain.usage_report import (
    GB,
    Prices,
    PriceTableError,
    by_day,
    cost_of,
    prices_from,
    prices_in_file,
)
from openglacier.metrics.usage import (
    USAGE,
    WHERE_KEY,
    UsageCounts,
    count_request,
    vault_label,
)
from openglacier.ports import UsageRow

A = "123456789012"


def test_counts_add_drain_and_restore() -> None:
    counts = UsageCounts()
    key = ("2026-12-04", A, "v", "upload", "")
    counts.add(key, 1, 10)
    counts.add(key, 1, 5)
    drained = counts.drain()
    assert drained == [UsageRow(*key, 2, 15)]
    assert counts.drain() == []
    counts.restore(drained)  # a failed flush: counted again next time
    counts.add(key, 1, 1)
    assert counts.drain() == [UsageRow(*key, 3, 16)]


def test_requests_without_an_account_are_not_counted() -> None:
    USAGE.drain()
    count_request({"headers": []}, "ListVaults", 403, 0)
    assert USAGE.drain() == []
    scope = {"headers": [(b"x-amz-archive-size", b"42")], WHERE_KEY: ("2026-12-04", A, "v")}
    count_request(scope, "CompleteMultipartUpload", 201, 0)
    count_request(scope, "CompleteMultipartUpload", 400, 0)  # failed: a request, no upload
    assert sorted(USAGE.drain(), key=lambda r: r.kind) == [
        UsageRow("2026-12-04", A, "v", "request", "CompleteMultipartUpload", 2, 0),
        UsageRow("2026-12-04", A, "v", "upload", "", 1, 42),
    ]


def test_prices_replace_defaults_and_refuse_bad_keys(tmp_path: Path) -> None:
    prices = prices_from({"storage-gb-month": 1, "currency": "EUR"}, "f")
    assert (prices.storage_gb_month, prices.currency) == (1.0, "EUR")
    assert prices.upload_per_1000 == Prices().upload_per_1000
    with pytest.raises(PriceTableError, match="unknown price 'per_tb'"):
        prices_from({"per_tb": 1}, "f")
    for bad in (-1, "1", True):
        with pytest.raises(PriceTableError, match="must be a number >= 0"):
            prices_from({"upload_per_1000": bad}, "f")
    path = tmp_path / "p.toml"
    path.write_text("prices = 3\n")
    with pytest.raises(PriceTableError, match="must be a table"):
        prices_in_file(path)
    path.write_text("[other]\nx = 1\n")
    assert prices_in_file(path) is None


def test_storage_is_a_month_spread_over_its_days() -> None:
    prices = prices_from({"storage_gb_month": 30.0, "upload_per_1000": 0}, "f")
    feb, dec = by_day(
        [
            UsageRow("2026-02-01", A, "v", "stored", "", 1, 28 * GB),
            UsageRow("2026-12-01", A, "v", "stored", "", 1, 31 * GB),
        ]
    )
    assert cost_of(feb, prices)["storage"] == pytest.approx(30.0)
    assert cost_of(dec, prices)["storage"] == pytest.approx(30.0)
    assert cost_of(dec, prices)["total"] == pytest.approx(30.0)


def test_an_unknown_tier_costs_nothing() -> None:
    (day,) = by_day([UsageRow("2026-12-01", A, "v", "retrieval", "Glacial", 1000, GB)])
    assert cost_of(day, Prices())["retrieval"] == 0


def test_vault_labels() -> None:
    assert vault_label("") == ""  # account-level operations
    assert vault_label("photos-2026.v_1") == "photos-2026.v_1"
    assert vault_label("n" * 256) == "(invalid)"
    assert vault_label("a\x00b") == "(invalid)"
