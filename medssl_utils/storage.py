"""Writing files so that nothing on disk is ever half-written: write to a temp file, then rename."""
from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def _create_temp(path: Path) -> Path:
    """A new empty file beside ``path``, created with mode 0o666 so the kernel applies the umask.

    ``tempfile.mkstemp`` creates files 0600 whatever the umask, and ``os.replace`` keeps that mode, so every
    result would be private to its owner. Asking the kernel for 0o666 gives exactly what a plain ``open(path,
    "w")`` would (umask and default ACLs included) without reading the process-wide umask, which can only be
    read by setting it and would race with other threads.
    """
    for _ in range(100):
        tmp = path.parent / f".{path.stem}.{secrets.token_hex(6)}.tmp{path.suffix}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"cannot create a temporary file beside {path}")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds.

    The final file gets the mode a plain ``open()`` would give it (0o666 minus the umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _create_temp(path)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
