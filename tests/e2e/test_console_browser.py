"""The web console in a real chromium: sign-in, vaults, upload, retrieve,
download, usage, and the refusals (wrong secret, another account, no CSRF)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from openglacier.treehash import tree_hash
from support.console_pages import OTHER_ACCOUNT, sign_in, write_file
from support.server import ACCESS_KEY, ACCOUNT_ID, ADMIN_TOKEN, SECRET_KEY, LiveServer


def test_sign_in_lists_vaults_and_creates_one(page: Any, server: LiveServer) -> None:
    server.client().create_vault(vaultName="made-by-boto3")
    sign_in(page, server, ACCESS_KEY, SECRET_KEY)
    expect(page.get_by_role("heading", name=f"Vaults of account {ACCOUNT_ID}")).to_be_visible()
    expect(page.get_by_role("link", name="made-by-boto3")).to_be_visible()
    page.get_by_label("Vault name").fill("made-in-console")
    page.get_by_role("button", name="Create vault").click()
    expect(page.get_by_role("heading", name="made-in-console")).to_be_visible()
    names = [v["VaultName"] for v in server.client().list_vaults()["VaultList"]]
    assert "made-in-console" in names  # really created, as the API sees it


def test_wrong_secret_is_refused(page: Any, server: LiveServer) -> None:
    sign_in(page, server, ACCESS_KEY, "not-the-secret")
    assert page.get_by_role("alert").inner_text() == "The access key id or secret is not correct."
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    response = page.goto(f"{server.endpoint}/console/vaults")
    assert page.url.startswith(f"{server.endpoint}/console/signin")  # still signed out
    assert response is not None
    assert response.status == 200


def test_sign_in_with_the_keyboard_only(page: Any, server: LiveServer) -> None:
    page.goto(f"{server.endpoint}/console/signin")
    expect(page.get_by_label("Access key id")).to_be_focused()  # autofocus, once loaded
    page.keyboard.type(ACCESS_KEY)
    page.keyboard.press("Tab")  # past the field's help text, to the secret
    page.keyboard.type(SECRET_KEY)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/console/vaults$"))


def test_another_account_cannot_see_this_accounts_vaults(
    page: Any, server: LiveServer, other_key: tuple[str, str]
) -> None:
    server.client().create_vault(vaultName="private-to-root")
    sign_in(page, server, *other_key)
    expect(page.get_by_role("heading", name=f"Vaults of account {OTHER_ACCOUNT}")).to_be_visible()
    expect(page.get_by_role("link", name="private-to-root")).to_have_count(0)
    response = page.goto(f"{server.endpoint}/console/vaults/private-to-root")
    assert response is not None
    assert response.status == 404  # its own account has no such vault
    assert page.goto(f"{server.endpoint}/console/keys").status == 403  # admin only


def test_admin_sees_every_account(
    page: Any, server: LiveServer, other_key: tuple[str, str]
) -> None:
    sign_in(page, server, "", ADMIN_TOKEN)
    page.get_by_role("link", name="Accounts").click()
    expect(page.get_by_role("cell", name=OTHER_ACCOUNT)).to_be_visible()
    page.get_by_role("link", name="Keys").click()
    expect(page.get_by_text(other_key[0])).to_be_visible()
    assert other_key[1] not in page.content()  # no secret is ever rendered
    assert SECRET_KEY not in page.content()


def test_a_form_without_its_csrf_token_is_refused(page: Any, server: LiveServer) -> None:
    sign_in(page, server, ACCESS_KEY, SECRET_KEY)
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    url = f"{server.endpoint}/console/vaults"
    forged = httpx.post(url, data={"vault_name": "forged"}, cookies=cookies)
    assert forged.status_code == 403
    assert "reload the page" in forged.text
    wrong = httpx.post(url, data={"vault_name": "forged", "csrf_token": "x"}, cookies=cookies)
    assert wrong.status_code == 403
    names = [v["VaultName"] for v in server.client().list_vaults()["VaultList"]]
    assert "forged" not in names  # nothing changed


def test_upload_retrieve_download_and_usage(page: Any, server: LiveServer, tmp_path: Path) -> None:
    server.client().create_vault(vaultName="browser")
    size = 2 * 1048576 + 12345  # three parts of 1 MiB, the last one short
    data = write_file(tmp_path / "backup.bin", size)
    sign_in(page, server, ACCESS_KEY, SECRET_KEY)
    page.goto(f"{server.endpoint}/console/vaults/browser/upload")
    page.get_by_label("File").set_input_files(str(tmp_path / "backup.bin"))
    page.get_by_label("Description").fill("nightly backup")
    page.get_by_label("Part size").select_option(label="1 MiB")
    page.get_by_role("button", name="Upload").click()
    uploaded = page.locator("#uploaded")
    uploaded.wait_for()
    assert tree_hash(data) in uploaded.inner_text()  # the page's hash is Glacier's
    uploaded.click()
    assert page.locator("#tree-hash").inner_text() == tree_hash(data)
    page.get_by_label("Tier").select_option("Expedited")
    page.get_by_role("button", name="Start retrieval").click()
    assert server.admin("POST", "/jobs/run").status_code == 200  # complete it now
    page.reload()
    assert page.locator("#job-state").inner_text() == "Succeeded"
    with page.expect_download() as info:
        page.locator("#download").click()
    downloaded = Path(info.value.path()).read_bytes()
    assert hashlib.sha256(downloaded).digest() == hashlib.sha256(data).digest()
    assert server.admin("POST", "/maintenance").status_code == 200  # the day's usage rollup
    page.get_by_role("link", name="Usage").click()
    row = page.locator("#usage-vaults tr", has_text="browser")
    assert row.count() == 1
    cells = row.locator("td").all_inner_texts()
    assert cells[:4] == ["browser", "1", "2.0 MiB", "1"]  # archives, stored, uploads


def test_archives_page_lists_and_filters(page: Any, server: LiveServer) -> None:
    client = server.client()
    client.create_vault(vaultName="listed")
    ids = {
        text: client.upload_archive(
            vaultName="listed", archiveDescription=text, body=text.encode()
        )["archiveId"]
        for text in ("alpha report", "beta report", "gamma photo")
    }
    sign_in(page, server, ACCESS_KEY, SECRET_KEY)
    page.goto(f"{server.endpoint}/console/vaults/listed/archives")
    for text in ids:
        expect(page.get_by_role("link", name=text)).to_be_visible()
    page.get_by_label("Description contains").fill("report")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("link", name="gamma photo")).to_have_count(0)
    expect(page.get_by_role("link", name="beta report")).to_be_visible()
    page.get_by_role("link", name="alpha report").click()
    assert page.locator("#archive-id").inner_text() == ids["alpha report"]


def test_sign_out_ends_the_session(page: Any, server: LiveServer) -> None:
    sign_in(page, server, ACCESS_KEY, SECRET_KEY)
    page.get_by_role("button", name="Sign out").click()
    page.goto(f"{server.endpoint}/console/vaults")
    assert "/console/signin" in page.url


@pytest.mark.parametrize("path", ["/console/vaults/nope", "/console/nothing-here"])
def test_unknown_pages_are_404_pages(page: Any, server: LiveServer, path: str) -> None:
    sign_in(page, server, ACCESS_KEY, SECRET_KEY)
    response = page.goto(server.endpoint + path)
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("alert")).to_be_visible()


@pytest.mark.parametrize("size", [1, 1048576, 2 * 1048576 + 1])
def test_the_pages_tree_hash_is_glaciers_at_part_and_leaf_edges(
    page: Any, server: LiveServer, tmp_path: Path, size: int
) -> None:
    server.client().create_vault(vaultName="edges")
    data = write_file(tmp_path / "edge.bin", size)
    sign_in(page, server, ACCESS_KEY, SECRET_KEY)
    page.goto(f"{server.endpoint}/console/vaults/edges/upload")
    page.get_by_label("File").set_input_files(str(tmp_path / "edge.bin"))
    page.get_by_label("Part size").select_option(label="1 MiB")
    page.get_by_role("button", name="Upload").click()
    uploaded = page.locator("#uploaded")
    uploaded.wait_for()
    archive_id = uploaded.inner_text().split()[2]
    output = server.client().describe_vault(vaultName="edges")  # the vault exists
    assert output["VaultName"] == "edges"
    assert f"(tree hash {tree_hash(data)})" in uploaded.inner_text()
    job = server.client().initiate_job(
        vaultName="edges", jobParameters={"Type": "archive-retrieval", "ArchiveId": archive_id}
    )
    assert server.admin("POST", "/jobs/run").status_code == 200
    got = server.client().get_job_output(vaultName="edges", jobId=job["jobId"])
    assert got["body"].read() == data  # stored exactly, as boto3 reads it back


def test_an_empty_file_is_refused_in_the_page(
    page: Any, server: LiveServer, tmp_path: Path
) -> None:
    server.client().create_vault(vaultName="empty")
    (tmp_path / "empty.bin").write_bytes(b"")
    sign_in(page, server, ACCESS_KEY, SECRET_KEY)
    page.goto(f"{server.endpoint}/console/vaults/empty/upload")
    page.get_by_label("File").set_input_files(str(tmp_path / "empty.bin"))
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_role("status")).to_contain_text("at least one byte")
    listed = server.client().list_multipart_uploads(vaultName="empty")["UploadsList"]
    assert listed == []  # nothing was started
