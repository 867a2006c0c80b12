"""Where records live: a three-method bytes interface and two implementations.

The interface deals in bytes so that any blob storage (a directory, an S3 bucket, a Prefect
storage block) adapts to it in a few lines; reading and writing :class:`KeyRecord` objects,
including rejecting corrupt or foreign bytes, is done once, here, on top of it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

from dbt_cachekeys._errors import RecordError
from dbt_cachekeys._records import KeyRecord

logger = logging.getLogger("dbt_cachekeys")

_PLAIN_ID = re.compile(r"[a-z0-9_.-]{1,150}")
_UNSAFE = re.compile(r"[^a-z0-9_.-]+")


@runtime_checkable
class KeyStore(Protocol):
    """Bytes per node id. Implementations must make :meth:`put` atomic.

    A reader must see either the previous bytes or the new ones, never a mix, even with several
    processes writing the same id at once and after a crash mid-write. Last writer wins.
    """

    def get(self, unique_id: str) -> bytes | None:
        """The bytes stored for ``unique_id``, or ``None`` if there are none."""
        ...

    def put(self, unique_id: str, data: bytes) -> None:
        """Store ``data`` for ``unique_id``, replacing what was there, atomically."""
        ...

    def delete(self, unique_id: str) -> None:
        """Remove what is stored for ``unique_id``; nothing happens if there is nothing."""
        ...


class LocalKeyStore:
    """A :class:`KeyStore` in a local directory: one JSON file per node.

    Writes go to a temporary file in the same directory, are flushed to disk, then renamed over
    the node's file (``os.replace``), which is atomic: concurrent writers in several processes
    never interleave, and a crash leaves the old file or the new one (at worst a stray
    ``.tmp-*`` file, which is ignored). The object holds only a path, so it pickles.

    Args:
        directory: Where the files go; created if missing. Give each target its own directory
            to keep a cached result per target (sharing one is safe, only less effective).

    Example:
        >>> import tempfile
        >>> store = LocalKeyStore(tempfile.mkdtemp())
        >>> store.put("model.shop.orders", b"{}")
        >>> store.get("model.shop.orders"), store.get("model.shop.other")
        (b'{}', None)
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def path_for(self, unique_id: str) -> Path:
        """The file that holds ``unique_id``'s record.

        Plain lowercase ids are used as they are; others get a digest suffix, so that ids
        differing only in case stay apart on case-insensitive file systems.
        """
        if _PLAIN_ID.fullmatch(unique_id):
            return self.directory / f"{unique_id}.json"
        digest = hashlib.sha256(unique_id.encode("utf-8")).hexdigest()[:16]
        stem = _UNSAFE.sub("_", unique_id.lower())[:100]
        return self.directory / f"{stem}-{digest}.json"

    def get(self, unique_id: str) -> bytes | None:
        """The stored bytes, or ``None`` if the file does not exist."""
        try:
            return self.path_for(unique_id).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, unique_id: str, data: bytes) -> None:
        """Write atomically (temp file, fsync, ``os.replace``)."""
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, self.path_for(unique_id))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def delete(self, unique_id: str) -> None:
        """Remove the file if it exists."""
        self.path_for(unique_id).unlink(missing_ok=True)

    def __repr__(self) -> str:
        return f"LocalKeyStore({str(self.directory)!r})"


class MemoryKeyStore:
    """A :class:`KeyStore` in a dict, for tests and single-process dry runs. Thread-safe.

    Example:
        >>> store = MemoryKeyStore()
        >>> store.put("seed.shop.raw", b"x")
        >>> store.get("seed.shop.raw")
        b'x'
    """

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def get(self, unique_id: str) -> bytes | None:
        """The stored bytes, or ``None``."""
        with self._lock:
            return self.data.get(unique_id)

    def put(self, unique_id: str, data: bytes) -> None:
        """Store the bytes."""
        with self._lock:
            self.data[unique_id] = bytes(data)

    def delete(self, unique_id: str) -> None:
        """Forget the bytes."""
        with self._lock:
            self.data.pop(unique_id, None)


def load_record(store: KeyStore, unique_id: str) -> KeyRecord | None:
    """Read a node's record from a store; ``None`` if it has none or it cannot be used.

    A corrupt, foreign or unreadable record is logged as a warning and treated as absent (the
    node will run and its record be rewritten), never raised: a damaged cache must not fail a
    build.

    Example:
        >>> store = MemoryKeyStore()
        >>> store.put("model.p.m", b"garbage")
        >>> load_record(store, "model.p.m") is None
        True
    """
    try:
        data = store.get(unique_id)
    except Exception as exc:  # any storage backend: a cache failure must not fail the build
        logger.warning(
            "cannot read the cache record of %s (%s); treating it as absent", unique_id, exc
        )
        return None
    if data is None:
        return None
    try:
        return KeyRecord.from_json(data, unique_id=unique_id)
    except RecordError as exc:
        logger.warning("ignoring a cache record: %s", exc)
        return None


def save_record(store: KeyStore, record: KeyRecord) -> bool:
    """Write a record; log a warning and return ``False`` if the store fails."""
    try:
        store.put(record.unique_id, record.to_json())
    except Exception as exc:  # any storage backend: a cache failure must not fail the build
        logger.warning(
            "cannot save the cache record of %s (%s); it will run again next time",
            record.unique_id,
            exc,
        )
        return False
    return True


def delete_record(store: KeyStore, unique_id: str) -> bool:
    """Delete a record; log a warning and return ``False`` if the store fails."""
    try:
        store.delete(unique_id)
    except Exception as exc:  # any storage backend: a cache failure must not fail the build
        logger.warning("cannot delete the cache record of %s (%s)", unique_id, exc)
        return False
    return True
