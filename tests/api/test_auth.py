"""Authentication matrix: no key, bad header, bad key, revoked key, wrong scope, right scope."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from quant.api import audit
from quant.api.app import create_app
from quant.api.keys import KeyInfo, KeyStore, keys_path
from tests.api.conftest import Deployment
from tests.support.demo import request_body

LATEST = "/v1/signals/000300.SH/latest"


@pytest.fixture
def client(deployment: Deployment) -> TestClient:
    with TestClient(create_app(deployment.config())) as c:
        yield c


def _forecast(client: TestClient, dep: Deployment, headers: dict[str, str]) -> int:
    body = request_body(dep.daily, None, dep.daily["session"][-1])
    return client.post("/v1/forecast", json=body, headers=headers).status_code


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401),
        ({"Authorization": "Bearer"}, 401),
        ({"Authorization": "Bearer not-a-key"}, 401),
        ({"Authorization": "Bearer qk_000000000000_wrongsecret"}, 401),
    ],
)
def test_missing_or_bad_key_is_401(
    client: TestClient, deployment: Deployment, headers: dict[str, str], status: int
) -> None:
    r = client.get(LATEST, headers=headers)
    assert r.status_code == status
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"] == "unauthorized"
    assert _forecast(client, deployment, headers) == status


def test_right_key_with_wrong_secret_is_401(client: TestClient, deployment: Deployment) -> None:
    key = deployment.keys["both"]
    tampered = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert client.get(LATEST, headers={"Authorization": f"Bearer {tampered}"}).status_code == 401


def test_revoked_key_is_401(client: TestClient, deployment: Deployment) -> None:
    r = client.get(LATEST, headers=deployment.headers("revoked"))
    assert r.status_code == 401
    assert "revoked" in r.json()["message"]
    assert _forecast(client, deployment, deployment.headers("revoked")) == 401


def test_revocation_applies_to_a_running_server_at_once(
    client: TestClient, deployment: Deployment
) -> None:
    ks = KeyStore(keys_path(deployment.store))  # another connection, as `quant keys revoke`
    key, info = ks.create(["signals:read"], "short-lived")
    assert client.get(LATEST, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    ks.revoke(info.key_id)
    ks.close()
    assert client.get(LATEST, headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_scopes(client: TestClient, deployment: Deployment) -> None:
    read, fc = deployment.headers("read"), deployment.headers("forecast")
    assert client.get(LATEST, headers=read).status_code == 200
    assert client.get("/v1/models", headers=read).status_code == 200
    r = client.get(LATEST, headers=fc)
    assert r.status_code == 403
    assert "signals:read" in r.json()["message"]
    assert _forecast(client, deployment, read) == 403
    assert _forecast(client, deployment, fc) == 200
    assert _forecast(client, deployment, deployment.headers("both")) == 200


def test_keys_never_reach_logs_or_audit(
    client: TestClient, deployment: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for which in ("both", "forecast", "revoked"):
        client.get(LATEST, headers=deployment.headers(which))
        _forecast(client, deployment, deployment.headers(which))
    client.app.state.audit.flush()  # type: ignore[attr-defined]
    text = caplog.text
    rows = KeyStore(keys_path(deployment.store)).audit_rows(1000)
    for key in deployment.keys.values():
        secret = key.split("_", 2)[2]
        assert secret not in text
        assert all(secret not in str(r) for r in rows)
    assert {r[2] for r in rows} >= {
        k.key_id for k in KeyStore(keys_path(deployment.store)).list_keys()[:2]
    }


def test_key_store_holds_only_hashes(deployment: Deployment) -> None:
    raw = keys_path(deployment.store).read_bytes()
    for key in deployment.keys.values():
        assert key.split("_", 2)[2].encode() not in raw
    listed = KeyStore(keys_path(deployment.store)).list_keys()
    assert {k.last4 for k in listed} >= {key[-4:] for key in deployment.keys.values()}
    assert sum(not k.active for k in listed) == 1


def test_a_key_check_does_not_wait_for_an_audit_flush(tmp_path: Path) -> None:
    """The audit trail writes on its own connection: while a flush holds it (thousands of rows
    and a COMMIT), a key check (on the event loop) still answers."""
    ks = KeyStore(tmp_path / "k.keys.sqlite")
    token, info = ks.create(["forecast"], "t")
    assert ks.verify(token) == info
    answers: list[KeyInfo | None] = []
    with ks._audit_lock:  # a flush in progress
        t = threading.Thread(target=lambda: answers.append(ks.verify(token)))
        t.start()
        t.join(timeout=10)
        assert not t.is_alive(), "the key check waited for the audit flush"
    assert answers == [info]
    ks.write_audit(
        [("rid", "2026-12-02T00:00:00+00:00", info.key_id, "GET", "/r", 200, None, None, 1.0)]
    )
    assert ks.audit_rows(1)[0][0] == "rid"
    ks.close()


def test_a_warm_key_check_runs_no_query_and_sees_a_revocation_at_once(tmp_path: Path) -> None:
    """Key rows are re-read only when the generation counter moves (or ``RECHECK_S`` passed):
    a warm check runs no SQL at all, and another process's revocation is seen on the next
    check."""
    path = tmp_path / "k.keys.sqlite"
    server, cli = KeyStore(path), KeyStore(path)  # the API's store and `quant keys`'s
    token, info = cli.create(["forecast"], "t")
    assert server.verify(token) == info
    statements: list[str] = []
    server._con.set_trace_callback(statements.append)
    for _ in range(100):
        assert server.verify(token) == info
    assert statements == []
    cli.revoke(info.key_id)
    assert server.verify(token) is None
    assert statements, "the revocation was seen without re-reading the key rows"
    cli.close()
    server.close()


def test_a_key_change_made_without_the_key_store_is_seen_within_the_recheck(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A revocation written straight into the table (no generation bump) still lands: SQLite's
    own change counter is read at least every ``RECHECK_S``."""
    import sqlite3

    from quant.api import keys

    path = tmp_path / "k.keys.sqlite"
    ks = KeyStore(path)
    token, info = ks.create(["forecast"], "t")
    assert ks.verify(token) == info
    con = sqlite3.connect(path)
    con.execute("UPDATE api_keys SET revoked_at = '2026-12-02T00:00:00+00:00'")
    con.commit()
    con.close()
    monkeypatch.setattr(keys, "RECHECK_S", 0.0)
    assert ks.verify(token) is None
    ks.close()


def test_an_audit_flush_waits_for_a_background_write_in_progress(tmp_path: Path) -> None:
    """``AuditLog.flush`` returns only when rows a background flush took are committed too (a
    caller that flushes and then reads the table sees every row recorded before)."""
    import asyncio
    import time

    from quant.api.audit import AuditLog

    ks = KeyStore(tmp_path / "k.keys.sqlite")
    slow_write = ks.write_audit

    def write_audit(rows: list[tuple[object, ...]]) -> None:
        if rows:
            time.sleep(0.3)
        slow_write(rows)

    ks.write_audit = write_audit  # type: ignore[method-assign]
    audit = AuditLog(ks, flush_s=0.01)

    async def main() -> None:
        audit.start()
        audit.record(
            request_id="r1",
            key_id=None,
            method="GET",
            route="/v1/signals/{symbol}/latest",
            status=200,
            model_version=None,
            snapshot_version=None,
            latency_ms=1.0,
        )
        await asyncio.sleep(0.1)  # the background flush took the row and is writing it
        await asyncio.to_thread(audit.flush)
        assert [r[0] for r in ks.audit_rows(10)] == ["r1"]
        await audit.stop()

    asyncio.run(main())
    ks.close()


@given(ts=st.lists(st.floats(0, 4e9, allow_nan=False), min_size=1, max_size=20))
def test_the_audit_clock_writes_each_instant_in_utc(ts: list[float]) -> None:
    """``_Clock.iso(t)`` is ``datetime.fromtimestamp(t, UTC)`` to the microsecond (truncated),
    whichever second it formatted last."""
    clock = audit._Clock()
    for t in [*ts, *sorted(ts)]:
        got = datetime.fromisoformat(clock.iso(t))
        want = datetime.fromtimestamp(int(t), UTC)
        assert got.utcoffset() == timedelta(0)
        assert timedelta(0) <= got - want < timedelta(seconds=1)
        assert abs((got - want).total_seconds() - (t - int(t))) < 2e-6


def test_known_keys_see_a_revocation_at_once_and_keep_no_token(tmp_path: Path) -> None:
    """The fast routes' key check: a header verified before passes with one look-up, a
    revocation or a missing scope is refused at once, a new token waits for ``verify``."""
    from quant.api.auth import KnownKeys

    ks = KeyStore(tmp_path / "k.sqlite")
    token, info = ks.create(["signals:read"], "desk")
    known = KnownKeys(ks)
    header = f"Bearer {token}".encode()
    assert known.get(header, "signals:read") is None  # never verified: scrypt is the route's
    assert ks.verify(token) == info
    assert known.get(header, "signals:read") == info
    assert known.get(f"bearer  {token} ".encode(), "signals:read") == info  # parsed as before
    assert known.get(header, "forecast") is None  # the scope
    assert known.get(b"Bearer qk_nope", "signals:read") is None
    assert all(token not in repr(v) and len(k) == 32 for k, v in known._by_header.items())
    ks.revoke(info.key_id)
    assert known.get(header, "signals:read") is None
    ks.close()


def test_a_new_key_on_many_connections_at_once_costs_one_scrypt(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pool of connections opened at once with one key not seen before: every request is
    answered (200 with the right key, 401 with a wrong secret) after one scrypt per token."""
    import asyncio

    from quant.api import keys as keys_mod
    from tests.api.conftest import run, running

    calls: list[bytes] = []
    real = keys_mod._hash

    def counted(secret: str, salt: bytes) -> bytes:
        calls.append(salt)
        return real(secret, salt)

    monkeypatch.setattr(keys_mod, "_hash", counted)
    key = deployment.keys["both"]
    wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")

    async def go() -> list[int]:
        async with running(create_app(deployment.config())) as client:
            rs = await asyncio.gather(
                *[
                    client.get(LATEST, headers={"Authorization": f"Bearer {k}"})
                    for k in [key] * 24 + [wrong] * 8
                ]
            )
            return [r.status_code for r in rs]

    assert run(go) == [200] * 24 + [401] * 8
    assert len(calls) == 2  # the right secret once, the wrong one once
