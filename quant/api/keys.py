"""API keys: bearer tokens stored only as salted scrypt hashes, with scopes, in SQLite.

The key file lives next to the store (``<store>.keys.sqlite``, WAL mode), so ``quant keys``
works while the scheduler holds DuckDB's single write lock.  A key reads
``qk_<id>_<secret>``: ``id`` (12 hex) finds the row, the 32-byte secret is checked against
``scrypt(secret, salt)``.  Only the id and the last four characters are ever shown again; the
key itself is printed once at creation and never logged.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import mmap
import os
import secrets
import sqlite3
import struct
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from feeds.schema import create_tables
from quant.schema import KEY_TABLES

SCOPES = ("signals:read", "forecast")
_PREFIX = "qk_"


class UnknownKeyError(LookupError):
    """A key id that does not exist."""


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    name: str
    scopes: tuple[str, ...]
    last4: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def keys_path(store: str | Path) -> Path:
    """Where the key file of ``store`` lives."""
    p = Path(store)
    return p.with_name(p.stem + ".keys.sqlite")


_GEN = struct.Struct("<Q")
RECHECK_S = 1.0  # the table's own change counter is read at least this often as well


class _Generation:
    """A counter of key changes in an 8-byte file beside the key file, mapped into memory.

    Every ``create`` and ``revoke`` (any process) adds one after its commit; a key check reads
    it from the mapping, with no system call and no query, and re-reads the key rows when it
    moved.  (Asking SQLite's ``PRAGMA data_version`` per request cost a query and a release of
    the GIL on every request, and the counter also moved at every audit flush.)
    """

    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_size < _GEN.size:
                os.ftruncate(fd, _GEN.size)
            fcntl.flock(fd, fcntl.LOCK_UN)
            self._map = mmap.mmap(fd, _GEN.size)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def read(self) -> int:
        return int(_GEN.unpack_from(self._map)[0])

    def bump(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)  # two writers must not lose an increment
        try:
            _GEN.pack_into(self._map, 0, (self.read() + 1) % 2**64)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)


def _split(token: str) -> tuple[str, str] | None:
    if not token.startswith(_PREFIX) or len(token) > 200:
        return None
    key_id, sep, secret = token[len(_PREFIX) :].partition("_")
    if not sep or len(key_id) != 12 or not secret:
        return None
    return key_id, secret


def _row_info(row: tuple[str, str, str, str, str, str | None]) -> KeyInfo:
    key_id, name, scopes, last4, created, revoked = row
    return KeyInfo(
        key_id=key_id,
        name=name,
        scopes=tuple(scopes.split()),
        last4=last4,
        created_at=datetime.fromisoformat(created),
        revoked_at=datetime.fromisoformat(revoked) if revoked else None,
    )


class KeyStore:
    """Create, list, revoke and verify API keys in one SQLite file (thread-safe)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA busy_timeout=5000")
            create_tables(self._con, KEY_TABLES)
        # Tokens already checked with scrypt, by their SHA-256: the slow hash runs once per
        # token and process, never per request.  Bounded; revocation is read from the table.
        self._verified: OrderedDict[bytes, str | None] = OrderedDict()
        self._cache: dict[str, tuple[KeyInfo, bytes, bytes]] | None = None
        self._cache_version = -1
        self._cache_gen = -1
        self._checked_at = 0.0
        # an in-memory database has this one connection: it sees every change itself
        self._gen = None if str(path) == ":memory:" else _Generation(Path(f"{path}.gen"))
        # The audit trail has its own connection and lock: a flush (thousands of rows and a
        # COMMIT that syncs the WAL, ~10-20 ms) must never hold up a key check, which runs on
        # the event loop (WAL mode: a reader and a writer do not block each other).
        if str(path) == ":memory:":  # one in-memory database is one connection
            self._audit_con, self._audit_lock = self._con, self._lock
        else:
            self._audit_con = sqlite3.connect(
                str(path), check_same_thread=False, isolation_level=None
            )
            self._audit_lock = threading.Lock()
            self._audit_con.execute("PRAGMA busy_timeout=5000")

    def close(self) -> None:
        with self._audit_lock:
            if self._audit_con is not self._con:
                self._audit_con.close()
        with self._lock:
            self._con.close()
            if self._gen is not None:
                self._gen.close()

    def create(self, scopes: tuple[str, ...] | list[str], name: str = "") -> tuple[str, KeyInfo]:
        """A new key and its record; the key is returned once and stored only as a hash."""
        bad = sorted(set(scopes) - set(SCOPES))
        if bad or not scopes:
            raise ValueError(f"scopes must be a non-empty subset of {SCOPES}, got {list(scopes)}")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        token = f"{_PREFIX}{key_id}_{secret}"
        salt = secrets.token_bytes(16)
        now = datetime.now(UTC)
        uniq = tuple(s for s in SCOPES if s in scopes)
        with self._lock:
            self._con.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                (
                    key_id,
                    name,
                    salt,
                    _hash(secret, salt),
                    " ".join(uniq),
                    token[-4:],
                    now.isoformat(),
                ),
            )
            self._cache = None
            if self._gen is not None:
                self._gen.bump()
        return token, KeyInfo(key_id, name, uniq, token[-4:], now, None)

    def list_keys(self) -> list[KeyInfo]:
        with self._lock:
            rows = self._con.execute(
                "SELECT key_id, name, scopes, last4, created_at, revoked_at FROM api_keys "
                "ORDER BY created_at"
            ).fetchall()
        return [_row_info(r) for r in rows]

    def revoke(self, key_id: str) -> KeyInfo:
        """Mark ``key_id`` revoked (idempotent: the first revocation time is kept)."""
        with self._lock:
            cur = self._con.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE key_id = ?",
                (datetime.now(UTC).isoformat(), key_id),
            )
            self._cache = None
            if cur.rowcount == 0:
                raise UnknownKeyError(f"no API key with id {key_id!r}")
            if self._gen is not None:
                self._gen.bump()
            row = self._con.execute(
                "SELECT key_id, name, scopes, last4, created_at, revoked_at FROM api_keys "
                "WHERE key_id = ?",
                (key_id,),
            ).fetchone()
        return _row_info(row)

    def seen(self, token: str) -> bool:
        """True when ``token`` was checked before (``verify`` will not run scrypt again)."""
        return hashlib.sha256(token.encode()).digest() in self._verified

    def _rows(self) -> dict[str, tuple[KeyInfo, bytes, bytes]]:
        """Every key row by id, re-read when a ``create`` or ``revoke`` anywhere moved the
        generation counter; at most ``RECHECK_S`` apart, also when SQLite says another
        connection committed (a change made without this class, or a lost counter file)."""
        cache, gen = self._cache, self._gen.read() if self._gen is not None else -1
        now = time.monotonic()
        if cache is not None and gen == self._cache_gen and now - self._checked_at < RECHECK_S:
            return cache
        with self._lock:
            version = self._con.execute("PRAGMA data_version").fetchone()[0]
            if self._cache is None or version != self._cache_version or gen != self._cache_gen:
                rows = self._con.execute(
                    "SELECT key_id, name, scopes, last4, created_at, revoked_at, salt, hash "
                    "FROM api_keys"
                ).fetchall()
                self._cache = {r[0]: (_row_info(r[:6]), r[6], r[7]) for r in rows}
                self._cache_version, self._cache_gen = version, gen
            self._checked_at = now
            return self._cache

    def current(self, key_id: str) -> tuple[KeyInfo, bytes] | None:
        """The record of ``key_id`` as stored now and its stored hash; None when there is none."""
        row = self._rows().get(key_id)
        return None if row is None else (row[0], row[2])

    def verify(self, token: str) -> KeyInfo | None:
        """The record of a valid, unrevoked ``token``; None for anything else."""
        parts = _split(token)
        if parts is None:
            return None
        key_id, secret = parts
        row = self._rows().get(key_id)
        if row is None:
            return None
        info, salt, stored = row
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._verified.get(digest, "")
        if cached == "":
            ok = hmac.compare_digest(_hash(secret, salt), stored)
            self._verified[digest] = key_id if ok else None
            if len(self._verified) > 10_000:
                self._verified.popitem(last=False)
            cached = self._verified[digest]
        if cached != key_id or not info.active:
            return None
        return info

    def write_audit(self, rows: list[tuple[object, ...]]) -> None:
        """Append audit rows (see ``api_audit``) in one transaction."""
        if not rows:
            return
        with self._audit_lock:
            con = self._audit_con
            con.execute("BEGIN")
            con.executemany("INSERT INTO api_audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            con.execute("COMMIT")

    def audit_rows(self, limit: int = 100) -> list[tuple[object, ...]]:
        with self._audit_lock:
            return self._audit_con.execute(
                "SELECT * FROM api_audit ORDER BY rowid DESC LIMIT ?", (limit,)
            ).fetchall()
