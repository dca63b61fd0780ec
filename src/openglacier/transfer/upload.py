"""`archive upload`: files to archives, parallel, resumable, recorded in the catalogue.

Files are read once, in order, by the calling thread: each part's tree hash
and the file's SHA-256 are computed as the bytes go by, and the part is handed
to a request thread (transfer/workers.py). A file smaller than one part is one
UploadArchive; anything else a multipart upload, whose id the catalogue keeps
until it completes. Run again after a kill, the same file resumes that upload:
ListParts says which parts the endpoint holds, and a part is sent again only if
it is missing there or its tree hash differs from the local part's.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from dataclasses import dataclass
from functools import partial
from typing import IO, Any

from botocore.exceptions import BotoCoreError, ClientError

from openglacier.transfer.catalogue import Catalogue, CatalogueEntry, PendingUpload, now_iso
from openglacier.transfer.errors import (
    AUTH,
    LOCAL,
    NOT_FOUND,
    UNREACHABLE,
    TransferError,
    classify,
)
from openglacier.transfer.files import LocalFile, Unusable, sha256_of
from openglacier.transfer.multipart import (
    MultipartState,
    part_count,
    part_size_for,
    parts_on_endpoint,
)
from openglacier.transfer.naming import DescriptionError, FileFacts, render
from openglacier.transfer.progress import Outcome, Reporter
from openglacier.transfer.workers import Workers
from openglacier.treehash import TreeHasher, combine, hashes_equal

FATAL = (AUTH, UNREACHABLE)  # every further request would fail the same way
EMPTY = "empty (a Glacier archive holds at least 1 byte)"


@dataclass(frozen=True)
class Target:
    """Where archives go: the endpoint (as the catalogue names it) and vault."""

    glacier: Any
    endpoint_key: str
    vault: str
    account_id: str = "-"  # as sent in request paths
    account: str = "-"  # as resolved from the vault's ARN, recorded in the catalogue


@dataclass(frozen=True)
class UploadOptions:
    part_size: int
    parallel: int
    template: str


@dataclass
class Summary:
    uploaded: int = 0
    skipped: int = 0
    failed: int = 0
    bytes_uploaded: int = 0
    fatal: TransferError | None = None


def as_error(exc: BaseException) -> TransferError:
    """Any failure of one file as a TransferError (nothing escapes as a traceback)."""
    try:
        return classify(exc)
    except Exception:
        return TransferError(f"{type(exc).__name__}: {exc}", LOCAL)


def check_unchanged(handle: IO[bytes], item: LocalFile, nread: int) -> None:
    info = os.fstat(handle.fileno())
    if nread != item.size or info.st_size != item.size or info.st_mtime_ns != item.mtime_ns:
        raise TransferError("the file changed while it was read; upload it again", LOCAL)


class Uploader:
    def __init__(
        self, target: Target, catalogue: Catalogue, options: UploadOptions, reporter: Reporter
    ) -> None:
        self.target = target
        self.catalogue = catalogue
        self.options = options
        self.reporter = reporter
        self.summary = Summary()
        self._lock = threading.Lock()
        self._workers = Workers(options.parallel)

    def run(self, items: list[LocalFile | Unusable]) -> Summary:
        self.reporter.begin(sum(i.size for i in items if isinstance(i, LocalFile)))
        try:
            for item in items:
                if self.summary.fatal is not None:
                    break
                if isinstance(item, Unusable):
                    self._record(None, Outcome(item.path, "failed", 0, reason=item.reason))
                    continue
                try:
                    self._upload(item)
                except Exception as exc:
                    self._failed(item, exc)
            self._workers.wait()
        finally:
            self.reporter.end()
        return self.summary

    # --- bookkeeping -----------------------------------------------------------------------
    def _record(self, item: LocalFile | None, outcome: Outcome) -> None:
        with self._lock:
            if outcome.status == "uploaded":
                self.summary.uploaded += 1
                self.summary.bytes_uploaded += outcome.size
            elif outcome.status == "skipped":
                self.summary.skipped += 1
            else:
                self.summary.failed += 1
        self.reporter.file_done(item, outcome)

    def _failed(self, item: LocalFile, exc: BaseException, hint: str = "") -> None:
        error = as_error(exc)
        if error.code in FATAL:
            with self._lock:
                self.summary.fatal = self.summary.fatal or error
        self._record(item, Outcome(item.relpath, "failed", item.size, reason=f"{error}{hint}"))

    def _entry(
        self, item: LocalFile, archive_id: str, sha256: str, tree: str, desc: str
    ) -> CatalogueEntry:
        return CatalogueEntry(
            archive_id=archive_id,
            path=item.key,
            size=item.size,
            sha256=sha256,
            tree_hash=tree,
            description=desc,
            vault=self.target.vault,
            mtime_ns=item.mtime_ns,
            uploaded_at=now_iso(),
            account=self.target.account,
            endpoint=self.target.endpoint_key,
        )

    def _request(self, operation: str, **params: Any) -> Any:
        call = getattr(self.target.glacier, operation)
        return call(accountId=self.target.account_id, vaultName=self.target.vault, **params)

    # --- one file --------------------------------------------------------------------------
    def _upload(self, item: LocalFile) -> None:
        if item.size == 0:
            self._record(item, Outcome(item.relpath, "skipped", 0, reason=EMPTY))
            return
        same = self._already_uploaded(item)
        if same is not None:
            reason = f"unchanged since its upload at {same.uploaded_at}"
            self._record(
                item,
                Outcome(
                    item.relpath, "skipped", item.size, same.archive_id, same.tree_hash, reason
                ),
            )
            return
        pending = self._pending(item)
        part_size = part_size_for(item.size, self.options.part_size)
        if pending is None and item.size < part_size:
            self._single(item, self._description(item))
        else:
            self._multipart(item, part_size, pending)

    def _already_uploaded(self, item: LocalFile) -> CatalogueEntry | None:
        t = self.target
        found = self.catalogue.same_file(
            t.endpoint_key, t.vault, item.key, item.size, item.mtime_ns
        )
        if not found:
            return None
        digest = sha256_of(item.path)
        return next((e for e in reversed(found) if e.sha256 == digest), None)

    def _description(self, item: LocalFile) -> str:
        facts = FileFacts(item.path, item.relpath, item.size, item.mtime_ns)
        try:
            return render(self.options.template, facts)
        except DescriptionError as exc:
            raise TransferError(str(exc), LOCAL) from exc

    def _pending(self, item: LocalFile) -> PendingUpload | None:
        """The file's upload in progress, if it is still the same file; an upload
        of a file that changed since is aborted and forgotten."""
        t = self.target
        pending = self.catalogue.pending_upload(t.endpoint_key, t.vault, item.key)
        if pending is None or (pending.size, pending.mtime_ns) == (item.size, item.mtime_ns):
            return pending
        self.reporter.note(f"{item.relpath} changed since its upload began: starting anew")
        # Already gone, or unreachable: the endpoint expires it anyway.
        with contextlib.suppress(ClientError, BotoCoreError):
            self._request("abort_multipart_upload", uploadId=pending.upload_id)
        self.catalogue.finish_upload(t.endpoint_key, t.vault, pending.upload_id, None)
        return None

    # --- small files -----------------------------------------------------------------------
    def _single(self, item: LocalFile, description: str) -> None:
        with item.path.open("rb") as handle:
            data = handle.read(item.size + 1)
            check_unchanged(handle, item, len(data))
        hasher = TreeHasher()
        hasher.update(data)
        self.reporter.file_started(item)
        self._workers.submit(partial(self._send_single, item, description, data, hasher))

    def _send_single(self, item: LocalFile, desc: str, data: bytes, hasher: TreeHasher) -> None:
        try:
            tree = hasher.hexdigest()
            answer = self._request(
                "upload_archive", archiveDescription=desc, body=data, checksum=tree
            )
            _same_hash(answer, tree)
            entry = self._entry(item, answer["archiveId"], hasher.sha256_hexdigest(), tree, desc)
            self.catalogue.add_archive(self.target.endpoint_key, entry)
            self.reporter.advance(item, len(data))
            self._record(item, Outcome(item.relpath, "uploaded", item.size, entry.archive_id, tree))
        except Exception as exc:
            self._failed(item, exc)

    # --- multipart -------------------------------------------------------------------------
    def _multipart(self, item: LocalFile, part_size: int, pending: PendingUpload | None) -> None:
        have: dict[int, str] = {}
        if pending is not None:
            pending, part_size, have = self._resume(item, pending)
        if pending is None:
            pending = self._initiate(item, part_size)
        finish = partial(self._complete, item, pending.description)
        hashes = [""] * part_count(item.size, part_size)
        state = MultipartState(pending.upload_id, part_size, hashes, finish)
        self.reporter.file_started(item)
        self._read_parts(item, state, have)

    def _resume(
        self, item: LocalFile, pending: PendingUpload
    ) -> tuple[PendingUpload | None, int, dict[int, str]]:
        t = self.target
        try:
            size, have = parts_on_endpoint(t.glacier, t.vault, pending.upload_id, t.account_id)
        except ClientError as exc:
            if classify(exc).code != NOT_FOUND:
                raise
            self.reporter.note(
                f"{item.relpath}: the endpoint no longer knows upload {pending.upload_id}"
                " (expired or aborted): starting a new upload"
            )
            self.catalogue.finish_upload(t.endpoint_key, t.vault, pending.upload_id, None)
            return None, part_size_for(item.size, self.options.part_size), {}
        size = size or pending.part_size
        parts = part_count(item.size, size)
        self.reporter.note(
            f"resuming {item.relpath}: {len(have)} of {parts} parts already on the endpoint"
        )
        return pending, size, have

    def _initiate(self, item: LocalFile, part_size: int) -> PendingUpload:
        description = self._description(item)
        answer = self._request(
            "initiate_multipart_upload", archiveDescription=description, partSize=str(part_size)
        )
        pending = PendingUpload(
            item.key,
            item.size,
            item.mtime_ns,
            part_size,
            answer["uploadId"],
            description,
            now_iso(),
        )
        t = self.target
        self.catalogue.start_upload(t.endpoint_key, t.account, t.vault, pending)
        return pending

    def _read_parts(self, item: LocalFile, state: MultipartState, have: dict[int, str]) -> None:
        """Read every part in order, hashing it; send those the endpoint lacks."""
        linear = hashlib.sha256()
        error: TransferError | None = None
        try:
            with item.path.open("rb") as handle:
                for index in range(len(state.hashes)):
                    if state.error is not None or self.summary.fatal is not None:
                        raise TransferError("stopped after an error", LOCAL)
                    data = handle.read(state.part_size)
                    self._part(item, state, index, data, have)
                    linear.update(data)
                check_unchanged(handle, item, handle.tell() + len(handle.read(1)))
        except Exception as exc:
            error = as_error(exc)
        state.read_all(linear.hexdigest(), error)

    def _part(
        self, item: LocalFile, state: MultipartState, index: int, data: bytes, have: dict[int, str]
    ) -> None:
        first = index * state.part_size
        if len(data) != min(state.part_size, item.size - first):
            raise TransferError("the file changed while it was read; upload it again", LOCAL)
        hasher = TreeHasher(linear=False)
        hasher.update(data)
        tree = state.hashes[index] = hasher.hexdigest()
        if hashes_equal(have.get(first, ""), tree):
            state.reused += 1  # accepted before: never sent twice
            self.reporter.advance(item, len(data))
            return
        state.sending()
        self._workers.submit(partial(self._send_part, item, state, first, data, tree))

    def _send_part(
        self, item: LocalFile, state: MultipartState, first: int, data: bytes, tree: str
    ) -> None:
        try:
            answer = self._request(
                "upload_multipart_part",
                uploadId=state.upload_id,
                range=f"bytes {first}-{first + len(data) - 1}/*",
                body=data,
                checksum=tree,
            )
            _same_hash(answer, tree)
        except Exception as exc:
            state.sent(as_error(exc))
            return
        self.reporter.advance(item, len(data))
        state.sent()

    def _complete(self, item: LocalFile, description: str, state: MultipartState) -> None:
        hint = "; the same command resumes this upload"
        if state.error is not None:
            self._failed(item, state.error, hint)
            return
        try:
            tree = combine(state.hashes)
            answer = self._request(
                "complete_multipart_upload",
                uploadId=state.upload_id,
                archiveSize=str(item.size),
                checksum=tree,
            )
            _same_hash(answer, tree)
            entry = self._entry(item, answer["archiveId"], state.sha256, tree, description)
            t = self.target
            self.catalogue.finish_upload(t.endpoint_key, t.vault, state.upload_id, entry)
        except Exception as exc:
            self._failed(item, exc, hint)
            return
        parts = len(state.hashes)
        note = (
            f"resumed: {state.reused} of {parts} parts were already there" if state.reused else ""
        )
        self._record(
            item, Outcome(item.relpath, "uploaded", item.size, entry.archive_id, tree, note)
        )


def _same_hash(answer: dict[str, Any], tree: str) -> None:
    """The endpoint's tree hash of what it stored must be ours (it checks the one we
    send, so a difference means an endpoint that does not)."""
    theirs = str(answer.get("checksum") or tree)
    if not hashes_equal(theirs, tree):
        raise TransferError(f"the endpoint stored tree hash {theirs}, the file's is {tree}")
