"""Files sent through the web (objection attachments, repair evidence), kept by content.

A file is stored once under its SHA-256 in the store's *files folder*; rows elsewhere
(`objection_attachments`, `repairs.evidence`) name it by hash, original name and size.
The folder is `store.db.store_folder(engine, "files", "XINYONG_FILES_DIR")`.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from xinyong.store.db import private_folder, store_folder

FILES_DIR_ENV = "XINYONG_FILES_DIR"
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_FILES = 10
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class FileRefusedError(Exception):
    """A file that is not kept (too big, too many, empty), with the reason."""


@dataclass(frozen=True)
class StoredFile:
    name: str
    sha256: str
    size: int
    content_type: str | None

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "sha256": self.sha256, "size": self.size, "content_type": self.content_type}


def files_folder(engine: Engine) -> Path:
    return store_folder(engine, "files", FILES_DIR_ENV)


def safe_name(name: str | None) -> str:
    """The last part of a client's file name, printable, at most 120 characters."""
    name = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '<>:"|?*').strip(" .")
    return name[-120:] or "file"


def file_path(engine: Engine, sha256: str) -> Path:
    if not _SHA256.match(sha256):
        raise FileRefusedError(f"not a SHA-256: {sha256!r}")
    return files_folder(engine) / sha256[:2] / sha256


def store_files(engine: Engine, files: list[tuple[str | None, bytes, str | None]]) -> list[StoredFile]:
    """Keep each (name, data, content type) by its hash; empty uploads (no file chosen) are skipped."""
    files = [f for f in files if f[1] or f[0]]
    if len(files) > MAX_FILES:
        raise FileRefusedError(f"at most {MAX_FILES} files")
    stored = []
    for name, data, content_type in files:
        if not data:
            raise FileRefusedError(f"{safe_name(name)}: the file is empty")
        if len(data) > MAX_FILE_BYTES:
            raise FileRefusedError(f"{safe_name(name)}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
        digest = hashlib.sha256(data).hexdigest()
        path = file_path(engine, digest)
        if not path.exists():
            private_folder(path.parent)  # identity papers, medical certificates: the owner's only
            partial = path.with_name(f"{digest}.{os.getpid()}.part")
            partial.write_bytes(data)
            partial.replace(path)
        stored.append(StoredFile(safe_name(name), digest, len(data), (content_type or None) and content_type[:100]))
    return stored
