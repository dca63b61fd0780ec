"""The transfer client's catalogue (real SQLite files) and description encoding."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from openglacier.transfer.catalogue import (
    Catalogue,
    CatalogueEntry,
    CatalogueError,
    PendingUpload,
    default_path,
)
from openglacier.transfer.naming import (
    DescriptionError,
    FileFacts,
    check_template,
    decode_description,
    encode_description,
    render,
)

EP = "http://127.0.0.1:1"


def entry(archive_id: str, path: str, uploaded_at: str = "2026-01-01T00:00:00Z") -> CatalogueEntry:
    return CatalogueEntry(
        archive_id=archive_id,
        path=path,
        size=3,
        sha256="s" * 64,
        tree_hash="t" * 64,
        description="d",
        vault="v",
        mtime_ns=7,
        uploaded_at=uploaded_at,
    )


def test_archives_are_found_by_id_and_by_latest_path(tmp_path: Path) -> None:
    with Catalogue.open(tmp_path / "sub" / "c.db") as cat:
        cat.add_archive(EP, entry("old", "/data/f", "2026-01-01T00:00:00Z"))
        cat.add_archive(EP, entry("new", "/data/f", "2026-01-02T00:00:00Z"))
        found = cat.find_archive(EP, "v", "/data/f")
        assert (found.archive_id if found else None) == "new"
        by_id = cat.find_archive(EP, "v", "old")
        assert (by_id.path if by_id else None) == "/data/f"
        assert cat.find_archive(EP, "other", "old") is None
        assert cat.find_archive("http://elsewhere", "v", "old") is None
        assert [e.archive_id for e in cat.same_file(EP, "v", "/data/f", 3, 7)] == ["old", "new"]
        assert cat.same_file(EP, "v", "/data/f", 3, 8) == []
        assert cat.remove_archive(EP, "v", "new")
        assert not cat.remove_archive(EP, "v", "new")
        assert [e.archive_id for e in cat.archives(EP, "v")] == ["old"]


def test_a_relative_path_finds_the_absolute_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with Catalogue.open(tmp_path / "c.db") as cat:
        cat.add_archive(EP, entry("a", str(tmp_path / "f")))
        found = cat.find_archive(EP, "v", "f")
        assert (found.archive_id if found else None) == "a"


def test_finishing_an_upload_records_the_archive_in_the_same_step(tmp_path: Path) -> None:
    pending = PendingUpload("/data/f", 3, 7, 1 << 20, "U1", "d", "2026-01-01T00:00:00Z")
    with Catalogue.open(tmp_path / "c.db") as cat:
        assert (tmp_path / "c.db").stat().st_mode & 0o777 == 0o600  # it lists file names
        cat.start_upload(EP, "-", "v", pending)
        assert cat.pending_upload(EP, "v", "/data/f") == pending
        cat.finish_upload(EP, "v", "U1", entry("a", "/data/f"))
    with Catalogue.open(tmp_path / "c.db") as cat:  # durable across processes
        assert cat.pending_upload(EP, "v", "/data/f") is None
        assert cat.find_archive(EP, "v", "a") is not None


def test_the_default_path_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENGLACIER_CATALOGUE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_path() == tmp_path / "openglacier" / "catalogue.db"
    monkeypatch.setenv("OPENGLACIER_CATALOGUE", str(tmp_path / "x.db"))
    assert default_path() == tmp_path / "x.db"


def test_an_unusable_catalogue_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(CatalogueError, match="cannot open catalogue"):
        Catalogue.open(tmp_path / "dir.db")
    newer = tmp_path / "newer.db"
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(CatalogueError, match="newer openglacier"):
        Catalogue.open(newer)


@pytest.mark.parametrize(
    "text",
    ["plain name.txt", "100% sure", "été/日本語 file", "tab\there", "\udcff raw byte", ""],
)
def test_descriptions_are_printable_ascii_and_reversible(text: str) -> None:
    encoded = encode_description(text)
    assert all(0x20 <= ord(c) <= 0x7E for c in encoded)
    assert decode_description(encoded) == text


def test_plain_descriptions_are_sent_unchanged() -> None:
    assert encode_description("photos/2024 summer (1).jpg") == "photos/2024 summer (1).jpg"


def test_templates_fill_in_known_fields_and_refuse_others(tmp_path: Path) -> None:
    facts = FileFacts(path=tmp_path / "é.txt", relpath="dir/é.txt", size=5, mtime_ns=0)
    assert render("{relpath}", facts) == "dir/%C3%A9.txt"
    assert render("{name} {size} {mtime}", facts) == "%C3%A9.txt 5 1970-01-01T00:00:00Z"
    with pytest.raises(DescriptionError, match="unknown field"):
        check_template("{nope}")
    with pytest.raises(DescriptionError, match="bad --description"):
        check_template("{")
    with pytest.raises(DescriptionError, match="at most 1024"):
        render("{relpath}" * 200, facts)
