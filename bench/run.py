"""``make bench``: Boochat beside python-socketio (the floor) and Matrix Synapse, under the same load.

    make bench                                         everything (about 6 minutes here)
    make bench ARGS='--only boochat --profiles 4x10@50 --duration 10'

Each peer is started, run through every profile with fresh users and rooms, and stopped (Boochat's
namespace is dropped, also on Ctrl-C or failure). Prints a table and writes bench/results/<UTC time>.json.
See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import time
import traceback
import uuid
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from bench.load import CONNECT_TIMEOUT, MemberSpec, Profile, Shared, Tally, histogram, load_process
from bench.measure import Usage, Watch, resident_mb, settle, speed_index
from bench.peers import Peer
from bench.peers import boochat as boochat_peer
from bench.peers import socketio as socketio_peer
from bench.peers import synapse as synapse_peer

PROFILES = {
    profile.name: profile
    for profile in (
        Profile("4x10@50", rooms=4, members=10, rate=50, duration=20),
        Profile("4x10@200", rooms=4, members=10, rate=200, duration=20),
        Profile("1x10-capacity", rooms=1, members=10, rate=None, duration=20),
        # Memory with 2,000 users connected (200 rooms of 10), 20 messages/s among them.
        Profile("footprint", rooms=200, members=10, rate=20, duration=10),
    )
}
PEERS = {
    "boochat": boochat_peer.Peer,
    "boochat-split": boochat_peer.SplitPeer,
    "socketio": socketio_peer.Peer,
    "synapse": synapse_peer.Peer,
}
# Profiles run only for some peers (2,000 Synapse users would take most of an hour to make).
ONLY = {"footprint": ("boochat", "boochat-split")}
RESULTS = Path(__file__).resolve().parent / "results"
MARGIN = 30.0  # seconds beyond a profile's own bounds before the parent gives up on a load process
SETTLE_TIMEOUT = 60.0  # seconds a server may stay busy after the drain, its CPU still counted


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(PEERS), help=f"comma-separated peers: {', '.join(PEERS)}")
    parser.add_argument("--profiles", default=",".join(PROFILES), help=f"comma-separated: {', '.join(PROFILES)}")
    parser.add_argument("--duration", type=float, default=None, help="seconds of sending per profile (default 20)")
    parser.add_argument("--processes", type=int, default=4, help="load processes (default 4)")
    args = parser.parse_args(argv)
    peers = _choose(args.only, PEERS, "--only")
    profiles = [PROFILES[name] for name in _choose(args.profiles, PROFILES, "--profiles")]
    if args.duration is not None:
        profiles = [replace(profile, duration=args.duration) for profile in profiles]
    try:
        report = asyncio.run(bench(peers, profiles, args.processes))
    except KeyboardInterrupt:  # the peer that was running has been stopped and cleaned up
        raise SystemExit("make bench: interrupted") from None
    report["args"] = vars(args)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{report['started_at'].replace(':', '').replace('-', '')}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report["results"]))
    machine = report["machine"]
    print(
        f"\n{machine['cpus']} CPUs; load average (1, 5, 15 min) {machine['load_average_at_start']} at the start, "
        f"{machine['load_average_at_end']} at the end: above the CPU count, other work competed with the peers"
    )
    start, end = machine["speed_index_seconds_at_start"], machine["speed_index_seconds_at_end"]
    print(f"speed index {start} s at the start, {end} s at the end (lower is faster; see bench/README.md)")
    print(f"\nwritten to {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


def _choose(text: str, known: dict[str, Any], option: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise SystemExit(f"{option}: unknown {unknown or text!r}; choose from {', '.join(known)}")
    return names


async def bench(peers: list[str], profiles: list[Profile], processes: int) -> dict[str, Any]:
    run = f"b{uuid.uuid4().hex[:6]}"
    report: dict[str, Any] = {
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            # Anything else running on the machine competes with the peers: read the figures with it.
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            # Its speed drifts (by a factor of two between days here): read the figures with it.
            "speed_index_seconds_at_start": speed_index(),
        },
        "commit": _commit(),
        "results": [],
    }
    for name in peers:
        for profile in profiles:
            if name not in ONLY.get(profile.name, (name,)):
                continue
            # A fresh server for every profile: a backlog one profile left cannot burden the next.
            peer: Peer = PEERS[name]()
            _say(f"{name}: starting for {profile.name} ({_describe(profile)})")
            try:
                await peer.start()
                rest = resident_mb(peer.processes())
                result = await run_profile(peer, profile, run, processes) | {"rest_rss_mb": rest}
                report["results"].append(result)
                _say(f"{name}: {profile.name}: " + table([result]).splitlines()[-1].strip())
            except Exception as error:  # one failure must not hide the other figures
                traceback.print_exc()
                report["results"].append({"peer": name, "profile": asdict(profile), "error": f"{error!r}"})
            finally:
                _say(f"{name}: stopping")
                await peer.stop()
    report["finished_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["machine"]["speed_index_seconds_at_end"] = speed_index()
    return report


async def run_profile(peer: Peer, profile: Profile, run: str, processes: int) -> dict[str, Any]:
    specs = await peer.prepare(run, profile)
    groups = [group for group in (specs[i::processes] for i in range(processes)) if group]
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing of our event loop
    shared = Shared.create(context, len(groups), profile.rooms)
    queue = context.Queue()
    workers = [
        context.Process(target=load_process, args=(peer.client, run, profile, group, shared, queue), daemon=True)
        for group in groups
    ]

    def watched() -> dict[str, tuple[int | None, str]]:
        named = peer.processes()
        named.update({f"load-{i + 1}": (worker.pid, "load") for i, worker in enumerate(workers)})
        return named

    watch = Watch(watched)
    loop = asyncio.get_running_loop()
    tallies: list[Tally] = []
    try:
        for worker in workers:
            worker.start()
        await loop.run_in_executor(None, shared.ready.wait, CONNECT_TIMEOUT + MARGIN)
        await watch.start()
        shared.start_ns.value = time.monotonic_ns() + 500_000_000  # every process is waiting: start soon
        shared.go.set()
        await loop.run_in_executor(None, shared.sent.wait, profile.duration + profile.drain + MARGIN)
        deadline = time.monotonic() + profile.drain + MARGIN
        for _ in workers:
            status, value = await loop.run_in_executor(None, queue.get, True, max(deadline - time.monotonic(), 1))
            if status != "ok":
                raise RuntimeError(f"a load process failed: {value}")
            tallies.append(value)
        # Until the server is idle again (bounded): what it does after the drain is still this profile's work.
        servers = [pid for pid, group in peer.processes().values() if pid and group in ("server", "database")]
        settled = await settle(servers, SETTLE_TIMEOUT)
        usage = await watch.stop()
    except BaseException:
        shared.ready.abort()  # wakes our threads still waiting at a barrier
        shared.sent.abort()
        if not queue.empty():
            status, value = queue.get_nowait()
            if status != "ok":
                raise RuntimeError(f"a load process failed: {value}") from None
        raise
    finally:
        for worker in workers:
            worker.join(10)
            if worker.is_alive():
                worker.terminate()
                worker.join()
    return summary(peer.name, profile, specs, tallies, usage) | {"settled_after_seconds": settled}


def summary(
    peer: str, profile: Profile, specs: list[MemberSpec], tallies: list[Tally], usage: dict[str, Usage]
) -> dict[str, Any]:
    total = Tally()
    latencies = histogram()
    for tally in tallies:
        total.add(tally)
        latencies.add(HdrHistogram.decode(tally.histogram))
    ok = total.outcomes.get("ok", 0)

    def cpu(group: str) -> float:
        return round(sum(u.cpu_seconds for u in usage.values() if u.group == group), 2)

    server_cpu = cpu("server") + cpu("database")
    return {
        "peer": peer,
        "profile": asdict(profile),
        "members": len(specs),
        "sent": total.sent,
        "outcomes": dict(total.outcomes),
        "ok": ok,
        # Capacity only: replies per second of sending (open loop sends at its rate, whatever the replies).
        "messages_per_second": round(ok / profile.duration, 1) if profile.rate is None else None,
        "expected": total.expected,
        "delivered": total.unique,
        "lost": total.expected - total.unique,
        "duplicates": total.duplicates,
        "late": total.late,
        "gaps": total.gaps,
        "latency_ms": _percentiles(latencies),
        "cpu_seconds": {
            "server": cpu("server"),
            "database": cpu("database"),
            "broker (shared)": cpu("broker (shared)"),
            "load": cpu("load"),
        },
        "cpu_ms_per_message": round(server_cpu * 1000 / total.sent, 2) if total.sent else None,
        # CPU of everything serving (server, database, broker) per CPU second of the load processes,
        # which do the same work in every run of a profile: this machine's speed drifts by up to a
        # third between minutes, and this ratio compares builds across that drift.
        "cpu_per_load_cpu": round((server_cpu + cpu("broker (shared)")) / cpu("load"), 2) if cpu("load") else None,
        "peak_rss_mb": round(sum(u.peak_rss_mb for u in usage.values() if u.group in ("server", "database")), 1),
        "processes": {label: asdict(u) for label, u in usage.items()},
        "histogram_us": base64.b64encode(latencies.encode()).decode() if latencies.get_total_count() else None,
    }


def _percentiles(latencies: HdrHistogram) -> dict[str, float | None]:
    if not latencies.get_total_count():
        return {"p50": None, "p90": None, "p99": None, "p99.9": None, "max": None, "mean": None}
    values = {f"p{p:g}": latencies.get_value_at_percentile(p) for p in (50, 90, 99, 99.9)}
    values |= {"max": latencies.get_max_value(), "mean": latencies.get_mean_value()}
    return {key: round(value / 1000, 1) for key, value in values.items()}


COLUMNS = [
    ("peer", 13), ("profile", 13), ("sent", 6), ("ok", 6), ("msg/s", 6), ("expected", 8), ("delivered", 9), ("lost", 6),
    ("dup", 4), ("p50 ms", 8), ("p90 ms", 8), ("p99 ms", 8), ("max ms", 8), ("CPU s", 6), ("db CPU s", 8),
    ("mq CPU s", 8), ("ms/msg", 7), ("x load", 7), ("rest MB", 7), ("RSS MB", 7),
]  # fmt: skip


def table(results: list[dict[str, Any]]) -> str:
    """One line per peer and profile; CPU s: the server's processes, db: the Mongo stand-in, mq: RabbitMQ,
    x load: all three per CPU second of the load processes."""
    lines = [" ".join(f"{title:>{width}}" for title, width in COLUMNS)]
    for result in results:
        if "error" in result:
            lines.append(f"{result['peer']:>13} {result['profile']['name']:>13} failed: {result['error']}")
            continue
        latency, cpu = result["latency_ms"], result["cpu_seconds"]
        cells = [
            result["peer"], result["profile"]["name"], result["sent"], result["ok"], result["messages_per_second"],
            result["expected"],
            result["delivered"], result["lost"], result["duplicates"], latency["p50"], latency["p90"], latency["p99"],
            latency["max"], cpu["server"], cpu["database"] or "-", cpu["broker (shared)"] or "-",
            result["cpu_ms_per_message"], result["cpu_per_load_cpu"], result.get("rest_rss_mb"), result["peak_rss_mb"],
        ]  # fmt: skip
        lines.append(
            " ".join(
                f"{'-' if cell is None else cell!s:>{width}}" for cell, (_, width) in zip(cells, COLUMNS, strict=True)
            )
        )
    return "\n".join(lines)


def _describe(profile: Profile) -> str:
    load = f"{profile.rate:g} msg/s open loop" if profile.rate else "each sender waits for its reply"
    rooms = f"{profile.rooms} room(s) x {profile.members} members"
    return f"{rooms}, {load}, {profile.duration:g} s + {profile.drain:g} s drain"


def _commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return head.stdout.strip() + (" (uncommitted changes)" if dirty.stdout.strip() else "")


def _say(line: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {line}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
