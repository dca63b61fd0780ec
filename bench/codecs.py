"""`python -m bench.codecs`: blob codec throughput, and UploadArchive with codecs on.

Part 1 (always): encode and decode SIZE MiB (default 256) per codec through the
stores' own code (codecs/stream.py's PayloadEncoder and PayloadReader, no disk),
written in ~1 MiB pieces as UploadArchive's ingest hands them over, for an
incompressible payload and a compressible one (log-like text, zstd ratio ~5),
with MB/s and the ratio to codec 1 (checked raw, the default).

Part 2 (`--upload`): UploadArchive MB/s on a real server (`serve`, file store,
fsync'd) with each codec configuration, the bench's incompressible archives
and the compressible ones, median of `--rounds`, with the ratio to codec 1:
the target is >= 0.8 with compression and encryption on.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import scenarios as sc
from bench.data import ArchiveFile, make_archive
from bench.servers import Server, start_openglacier
from openglacier.errors import IntegrityError
from openglacier.keyring import Keyring, create_key_file
from openglacier.storage.blobs.codecs import CodecConfig
from openglacier.storage.blobs.codecs.stream import (
    Emit,
    PayloadEncoder,
    PayloadReader,
    load_layout,
)
from openglacier.treehash import TreeHasher

MIB = 1 << 20
KEY = "0123456789abcdef" * 2
WRITE = MIB + 4096  # ingest batches are a little over 1 MiB, not chunk-aligned
RING = Keyring({"kbench": os.urandom(32)}, "kbench")


def configs(level: int) -> dict[str, CodecConfig]:
    return {
        "0 raw": CodecConfig(legacy_raw=True),
        "1 checked": CodecConfig(),
        f"2 zstd:{level}": CodecConfig(level),
        "3 aes-gcm": CodecConfig(None, RING),
        f"4 zstd:{level}+aes": CodecConfig(level, RING),
    }


def incompressible(size: int) -> bytes:
    return os.urandom(size)


def compressible(size: int) -> bytes:
    """Log lines: timestamps, levels, ids and repeated words (zstd:3 keeps about 34 %)."""
    rng = random.Random(5)
    words = [b"GET", b"PUT", b"archive", b"vault", b"upload", b"ok", b"retry", b"job"]
    lines = []
    total = 0
    while total < size:
        line = b"2026-12-04T%02d:%02d:%02d.%03dZ %s req=%016x %s %s %d\n" % (
            rng.randrange(24),
            rng.randrange(60),
            rng.randrange(60),
            rng.randrange(1000),
            rng.choice([b"INFO", b"WARN", b"DEBUG"]),
            rng.getrandbits(64),
            rng.choice(words),
            rng.choice(words),
            rng.randrange(100000),
        )
        lines.append(line)
        total += len(line)
    return b"".join(lines)[:size]


class _Memory:
    def __init__(self, blob: bytes, offset: int) -> None:
        self.blob, self.offset = memoryview(blob), offset

    def read(self, n: int) -> bytes:
        data = bytes(self.blob[self.offset : self.offset + n])
        if len(data) < n:
            raise IntegrityError("short")
        self.offset += n
        return data

    def close(self) -> None:
        pass


def encode(config: CodecConfig, pieces: list[bytes], keep: bool) -> tuple[float, bytes]:
    body = bytearray()
    emit: Emit = body.extend if keep else (lambda _b: None)
    start = time.perf_counter()
    encoder = PayloadEncoder(config, KEY, emit)
    for piece in pieces:
        encoder.write(memoryview(piece))
    header, index = encoder.finish()
    seconds = time.perf_counter() - start
    return seconds, (header.pack() + bytes(body) + index) if keep else b""


def decode(config: CodecConfig, blob: bytes) -> float:
    start = time.perf_counter()
    layout = load_layout(KEY, blob[:32], len(blob), lambda a, b: blob[a:b])
    size = layout.header.payload_length
    source = _Memory(blob, layout.file_span(0, size)[0])
    for _ in PayloadReader(layout, config.keyring, 0, size, source):
        pass
    return time.perf_counter() - start


@dataclass
class Row:
    codec: str
    data: str
    encode: float
    decode: float
    stored: int


def micro(size: int, level: int) -> list[Row]:
    rows = []
    for data_name, make in (("incompressible", incompressible), ("compressible", compressible)):
        payload = make(size)
        pieces = [payload[i : i + WRITE] for i in range(0, size, WRITE)]
        del payload
        for name, config in configs(level).items():
            encode(config, pieces[:8], keep=False)  # warm up pools and caches
            enc = min(encode(config, pieces, keep=False)[0] for _ in range(2))
            _, blob = encode(config, pieces, keep=True)
            dec = min(decode(config, blob) for _ in range(2))
            rows.append(Row(name, data_name, size / enc / 1e6, size / dec / 1e6, len(blob)))
            del blob
    return rows


def print_micro(rows: list[Row], size: int) -> None:
    print(f"codecs, {size // MIB} MiB in {WRITE} byte writes, MB/s (ratio to codec 1)")
    print(f"{'codec':14} {'data':15} {'encode':>16} {'decode':>16} {'stored/payload':>15}")
    for row in rows:
        base = next(r for r in rows if r.data == row.data and r.codec.startswith("1 "))
        print(
            f"{row.codec:14} {row.data:15} {row.encode:8.0f} ({row.encode / base.encode:4.2f})"
            f" {row.decode:8.0f} ({row.decode / base.decode:4.2f}) {row.stored / size:15.3f}"
        )


def compressible_archive(path: Path, size: int) -> ArchiveFile:
    data = compressible(size)
    path.write_bytes(data)
    hasher = TreeHasher()
    hasher.update(data)
    return ArchiveFile(path, size, hasher.hexdigest(), hasher.sha256_hexdigest(), (), size)


def upload(work: Path, size: int, rounds: int, level: int) -> None:
    """One server per configuration, all running at once; each round uploads to
    every server in turn, so the machine's drift (other load, disk) spreads
    over all of them instead of favouring the first."""
    key_file = work / "bench.key"
    create_key_file(key_file)
    archives = {
        "incompressible": make_archive(work / "random.bin", size),
        "compressible": compressible_archive(work / "logs.bin", size),
    }
    settings = {
        "1 checked": {},
        f"2 zstd:{level}": {"OPENGLACIER_COMPRESSION": f"zstd:{level}"},
        "3 aes-gcm": {"OPENGLACIER_ENCRYPTION_KEY_FILE": str(key_file)},
        f"4 zstd:{level}+aes": {
            "OPENGLACIER_COMPRESSION": f"zstd:{level}",
            "OPENGLACIER_ENCRYPTION_KEY_FILE": str(key_file),
        },
    }
    servers = {}
    try:
        for name, env in settings.items():
            saved = dict(os.environ)
            os.environ.update(env)
            try:
                servers[name] = start_openglacier(work / f"og-{name.split()[0]}")
            finally:
                os.environ.clear()
                os.environ.update(saved)
            sc.create_vault(servers[name].endpoint)
        rates = _upload_rounds(servers, archives, rounds)
    finally:
        for server in servers.values():
            server.stop()
    print(f"\nUploadArchive of {size // MIB} MiB, file store, median of {rounds}, MB/s")
    for (name, data_name), got in rates.items():
        rate = statistics.median(got)
        base = statistics.median(rates["1 checked", data_name])
        print(f"{name:14} {data_name:15} {rate:8.0f} ({rate / base:4.2f})")


def _upload_rounds(
    servers: dict[str, Server], archives: dict[str, ArchiveFile], rounds: int
) -> dict[tuple[str, str], list[float]]:
    rates: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for data_name, archive in archives.items():
            for name, server in servers.items():
                archive_id, seconds = sc.upload_archive(server.endpoint, archive)
                rates.setdefault((name, data_name), []).append(archive.size / seconds / 1e6)
                sc.delete_archive(server.endpoint, archive_id)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.codecs", description=__doc__)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--upload", action="store_true", help="also UploadArchive on a server")
    parser.add_argument("--upload-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workdir", default="/var/tmp")
    parser.add_argument("--level", type=int, default=3, help="zstd level (--compression zstd:N)")
    args = parser.parse_args()
    size = args.size_mib * MIB
    print_micro(micro(size, args.level), size)
    if args.upload:
        work = Path(tempfile.mkdtemp(prefix="og-bench-codecs-", dir=args.workdir))
        try:
            upload(work, args.upload_mib * MIB, args.rounds, args.level)
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
