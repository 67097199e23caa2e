"""``make bench``: Boochat beside python-socketio (the floor) and Matrix Synapse, under the same load.

    make bench                                         everything (about 50 minutes here, 45 of them scale)
    make bench ARGS='--only boochat --profiles 4x10@50 --duration 10'
    make bench ARGS='--only boochat --profiles storm --users 500'

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
from typing import Any, cast

from hdrh.histogram import HdrHistogram

from bench.crowd import FIRST_WITHIN, Crowd, CrowdShared, CrowdTally, crowd_process, rate_buckets
from bench.load import CONNECT_TIMEOUT, MemberSpec, Profile, Shared, Tally, histogram, load_process
from bench.measure import Usage, Watch, resident_bytes, resident_mb, settle, speed_index
from bench.peers import CrowdPeer, Peer, websockets_floor
from bench.peers import boochat as boochat_peer
from bench.peers import socketio as socketio_peer
from bench.peers import synapse as synapse_peer

PROFILES: dict[str, Profile | Crowd] = {
    profile.name: profile
    for profile in (
        Profile("4x10@50", rooms=4, members=10, rate=50, duration=20),
        # 4x10@50 with everyday chat around it (issue 23): as many reactions as messages, on the room's
        # latest item, and every member typing every 2 s. Its message figures sit beside 4x10@50's.
        Profile("4x10@50-mixed", rooms=4, members=10, rate=50, duration=20, reactions=50, typing_every=2.0),
        Profile("4x10@200", rooms=4, members=10, rate=200, duration=20),
        Profile("1x10-capacity", rooms=1, members=10, rate=None, duration=20),
        # Memory with 2,000 users connected (200 rooms of 10), 20 messages/s among them.
        Profile("footprint", rooms=200, members=10, rate=20, duration=10),
        # Issue 26, scale. One room of 1,000 members, 10 messages/s: 10,000 deliveries/s.
        Profile("fanout", rooms=1, members=1000, rate=10, duration=20),
        # A gateway restart: 5,000 users who were online all come back at once (bench.crowd).
        Crowd("storm", users=5000, reconnect=True, at_once=None, within=300),
        # Memory per connection: 10,000 users signed in and idle (bench.crowd), 10 at a time per process.
        Crowd("idle", users=10_000, reconnect=False, at_once=10, within=1200),
    )
}
PEERS: dict[str, Any] = {  # name -> the Peer class
    "boochat": boochat_peer.Peer,
    "boochat-split": boochat_peer.SplitPeer,
    "boochat-scaled": boochat_peer.ScaledPeer,
    "boochat-gw2": boochat_peer.TwoGatewaysPeer,
    "socketio": socketio_peer.Peer,
    "synapse": synapse_peer.Peer,
    "websockets": websockets_floor.Peer,
}
# Profiles run only for some peers (2,000 Synapse users would take most of an hour to make).
# Mixed profiles use requests only Boochat has (add_reaction, typing).
ONLY = {
    "footprint": ("boochat", "boochat-split"),
    "4x10@50-mixed": ("boochat", "boochat-split"),
    "fanout": ("boochat", "boochat-gw2"),
    "storm": ("boochat",),  # twelve minutes here: one peer
    "idle": ("boochat", "boochat-split", "websockets"),  # split: the gateway's memory alone
}
# Peers that run only some profiles: Boochat scaled out (issue 26), the floor of memory per connection.
PEER_ONLY = {"boochat-scaled": ("1x10-capacity",), "boochat-gw2": ("fanout",), "websockets": ("idle",)}
# A floor measured in the same run whenever its profile runs for a Boochat peer.
FLOORS = {"idle": "websockets"}
SIZED = ("fanout", "storm", "idle")  # profiles --users resizes: their users, the fanout room's members
RESULTS = Path(__file__).resolve().parent / "results"
MARGIN = 30.0  # seconds beyond a profile's own bounds before the parent gives up on a load process
SETTLE_TIMEOUT = 60.0  # seconds a server may stay busy after the drain, its CPU still counted


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(PEERS), help=f"comma-separated peers: {', '.join(PEERS)}")
    parser.add_argument("--profiles", default=",".join(PROFILES), help=f"comma-separated: {', '.join(PROFILES)}")
    parser.add_argument("--duration", type=float, default=None, help="seconds of sending per profile (default 20)")
    parser.add_argument("--processes", type=int, default=4, help="load processes (default 4)")
    parser.add_argument("--users", type=int, default=None, help=f"users of {', '.join(SIZED)} (a smaller try)")
    args = parser.parse_args(argv)
    peers = _choose(args.only, PEERS, "--only")
    profiles = [PROFILES[name] for name in _choose(args.profiles, PROFILES, "--profiles")]
    if args.duration is not None:
        profiles = [replace(p, duration=args.duration) if isinstance(p, Profile) else p for p in profiles]
    if args.users is not None:
        profiles = [resized(profile, args.users) for profile in profiles]
    peers += [floor for name, floor in FLOORS.items() if name in args.profiles and floor not in peers]
    try:
        report = asyncio.run(bench(peers, profiles, args.processes))
    except KeyboardInterrupt:  # the peer that was running has been stopped and cleaned up
        raise SystemExit("make bench: interrupted") from None
    report["args"] = vars(args)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{report['started_at'].replace(':', '').replace('-', '')}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    if any("signed_in" not in result for result in report["results"]):
        print(table(report["results"]))
    if any("signed_in" in result for result in report["results"]):
        print(crowd_table(report["results"]))
    for line in besides(report["results"]):
        print(line)
    machine = report["machine"]
    print(
        f"\n{machine['cpus']} CPUs; load average (1, 5, 15 min) {machine['load_average_at_start']} at the start, "
        f"{machine['load_average_at_end']} at the end: above the CPU count, other work competed with the peers"
    )
    start, end = machine["speed_index_seconds_at_start"], machine["speed_index_seconds_at_end"]
    print(f"speed index {start} s at the start, {end} s at the end (lower is faster; see bench/README.md)")
    print(f"\nwritten to {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


def resized(profile: Profile | Crowd, users: int) -> Profile | Crowd:
    """``profile`` with ``users`` users (``--users``), if it is one of those ``SIZED``."""
    if profile.name not in SIZED:
        return profile
    return replace(profile, users=users) if isinstance(profile, Crowd) else replace(profile, members=users)


def runs(peer: str, profile: str) -> bool:
    """Whether ``peer`` runs ``profile`` (``ONLY``, ``PEER_ONLY``)."""
    return peer in ONLY.get(profile, (peer,)) and profile in PEER_ONLY.get(peer, (profile,))


def _choose(text: str, known: dict[str, Any], option: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise SystemExit(f"{option}: unknown {unknown or text!r}; choose from {', '.join(known)}")
    return names


async def bench(peers: list[str], profiles: list[Profile | Crowd], processes: int) -> dict[str, Any]:
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
            if not runs(name, profile.name):
                continue
            # A fresh server for every profile: a backlog one profile left cannot burden the next.
            # Crowds' clients honour the gateway's 503s: it keeps its default pacing (bench.peers.boochat).
            peer: Peer = PEERS[name](paced=True) if isinstance(profile, Crowd) else PEERS[name]()
            _say(f"{name}: starting for {profile.name} ({_describe(profile)})")
            try:
                await peer.start()
                rest = resident_mb(peer.processes())
                if isinstance(profile, Crowd):
                    crowd = await run_crowd(cast(CrowdPeer, peer), profile, run, processes)
                    result = crowd | {"rest_rss_mb": rest}
                else:
                    result = await run_profile(peer, profile, run, processes) | {"rest_rss_mb": rest}
                report["results"].append(result)
                _say(f"{name}: {profile.name}: " + (crowd_table if isinstance(profile, Crowd) else table)(
                    [result]).splitlines()[-1].strip())  # fmt: skip
                for line in besides([result]):
                    _say(line)
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
    return summary(peer.name, profile, specs, tallies, usage) | {
        "settled_after_seconds": settled,
        "measured_seconds": watch.seconds,
        "machine_cpu_seconds": watch.machine_cpu_seconds,
    }


async def run_crowd(peer: CrowdPeer, crowd: Crowd, run: str, processes: int) -> dict[str, Any]:
    """``crowd`` against ``peer``: its load processes (bench.crowd), the server's memory at rest and
    with everyone in, its CPU from the start until it was idle with everyone in."""
    connects = await peer.crowd(run, crowd)
    groups = [group for group in (connects[i::processes] for i in range(processes)) if group]
    context = multiprocessing.get_context("spawn")
    shared = CrowdShared.create(context, len(groups))
    queue = context.Queue()
    workers = [
        context.Process(target=crowd_process, args=(peer.client, crowd, group, shared, queue), daemon=True)
        for group in groups
    ]

    def watched() -> dict[str, tuple[int | None, str]]:
        return peer.processes() | {f"load-{i + 1}": (worker.pid, "load") for i, worker in enumerate(workers)}

    watch = Watch(watched)
    loop = asyncio.get_running_loop()
    servers = [pid for pid, group in peer.processes().values() if pid and group in ("server", "database")]
    tallies: list[CrowdTally] = []
    try:
        for worker in workers:
            worker.start()
        first = FIRST_WITHIN if crowd.reconnect else 0.0
        if crowd.reconnect:
            _say(f"{peer.name}: {crowd.name}: signing {crowd.users} users in once, then closing them")
        await loop.run_in_executor(None, shared.ready.wait, first + MARGIN)
        settled_before = await settle(servers, SETTLE_TIMEOUT)  # the first sign-ins and their closing are done
        before = resident_bytes(peer.processes())
        await watch.start()
        shared.start_ns.value = time.monotonic_ns() + 500_000_000
        shared.go.set()
        _say(f"{peer.name}: {crowd.name}: {crowd.users} users connecting (at most {crowd.within:g} s)")
        await loop.run_in_executor(None, shared.done.wait, crowd.within + MARGIN)
        _say(f"{peer.name}: {crowd.name}: done connecting; waiting until the server is idle, then measuring")
        settled = await settle(servers, SETTLE_TIMEOUT)
        after = resident_bytes(peer.processes())
        usage = await watch.stop()
        shared.release.set()
        for _ in workers:
            status, value = await loop.run_in_executor(None, queue.get, True, MARGIN + SETTLE_TIMEOUT)
            if status != "ok":
                raise RuntimeError(f"a load process failed: {value}")
            tallies.append(value)
    except BaseException:
        shared.abort()  # wakes our threads still waiting at a barrier
        shared.release.set()
        if not queue.empty():
            status, value = queue.get_nowait()
            if status != "ok":
                raise RuntimeError(f"a load process failed: {value}") from None
        raise
    finally:
        for worker in workers:
            worker.join(MARGIN)
            if worker.is_alive():
                worker.terminate()
                worker.join()
    return crowd_summary(peer.name, crowd, tallies, usage, before, after) | {
        "settled_before_seconds": settled_before,
        "settled_after_seconds": settled,
        "measured_seconds": watch.seconds,
        "machine_cpu_seconds": watch.machine_cpu_seconds,
    }


def crowd_summary(
    peer: str,
    crowd: Crowd,
    tallies: list[CrowdTally],
    usage: dict[str, Usage],
    before: dict[str, int],
    after: dict[str, int],
) -> dict[str, Any]:
    """A crowd's figures: who got in and when, how many tries, the memory each connection added."""
    total = CrowdTally()
    for tally in tallies:
        total.add(tally)
    signed_in = sorted(total.signed_in_ns)
    grown = {label: after[label] - before[label] for label in after if label in before}
    # The gateway's processes (with boochat up's one process, all of it; the floor's echo server).
    gateways = [label for label in grown if label.startswith("gateway")] or [
        label for label in grown if usage.get(label, Usage()).group == "server"
    ]

    def per_connection(labels: list[str]) -> float | None:
        if not labels or not signed_in:
            return None
        return round(sum(grown[label] for label in labels) / len(signed_in) / 1024, 1)

    def cpu(group: str) -> float:
        return round(sum(u.cpu_seconds for u in usage.values() if u.group == group), 2)

    def at(fraction: float) -> float | None:
        return round(signed_in[min(int(fraction * len(signed_in)), len(signed_in) - 1)] / 1e9, 2) if signed_in else None

    return {
        "peer": peer,
        "profile": asdict(crowd),
        "users": total.users,
        "signed_in": len(signed_in),
        "missing": total.users - len(signed_in),
        # Seconds from the start until the last user was in (None: not everyone got in).
        "all_in_seconds": round(signed_in[-1] / 1e9, 2) if signed_in and len(signed_in) == total.users else None,
        "signed_in_after_seconds": {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": at(1.0)},
        "sign_ins_per_second": [list(bucket) for bucket in rate_buckets(signed_in)],
        "tries": {str(tries): users for tries, users in sorted(total.tries.items())},
        "refusals": dict(total.refusals),
        "paced_users": total.paced_users,
        "first_sign_in_seconds": total.first_seconds if crowd.reconnect else None,
        "first_missing": total.first_missing,
        "gateway_kib_per_connection": per_connection(gateways),
        "server_kib_per_connection": per_connection(
            [label for label in grown if usage.get(label, Usage()).group == "server"]
        ),
        "database_kib_per_connection": per_connection(
            [label for label in grown if usage.get(label, Usage()).group == "database"]
        ),
        "resident_bytes_before": before,
        "resident_bytes_after": after,
        "cpu_seconds": {
            "server": cpu("server"),
            "database": cpu("database"),
            "broker (shared)": cpu("broker (shared)"),
            "load": cpu("load"),
        },
        "peak_rss_mb": round(sum(u.peak_rss_mb for u in usage.values() if u.group in ("server", "database")), 1),
        "processes": {label: asdict(u) for label, u in usage.items()},
    }


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
        # Mixed profiles: the other requests' outcomes ("add_reaction ok", "typing ok", ...).
        "side_outcomes": dict(total.side),
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
    ("peer", 14), ("profile", 13), ("sent", 6), ("ok", 6), ("msg/s", 6), ("expected", 8), ("delivered", 9), ("lost", 6),
    ("dup", 4), ("p50 ms", 8), ("p90 ms", 8), ("p99 ms", 8), ("max ms", 8), ("CPU s", 6), ("db CPU s", 8),
    ("mq CPU s", 8), ("ms/msg", 7), ("x load", 7), ("rest MB", 7), ("RSS MB", 7),
]  # fmt: skip


def table(results: list[dict[str, Any]]) -> str:
    """One line per peer and profile; CPU s: the server's processes, db: the Mongo stand-in, mq: RabbitMQ,
    x load: all three per CPU second of the load processes."""
    lines = [" ".join(f"{title:>{width}}" for title, width in COLUMNS)]
    for result in results:
        if "error" in result:
            lines.append(f"{result['peer']:>14} {result['profile']['name']:>13} failed: {result['error']}")
            continue
        if "signed_in" in result:  # a crowd's: in crowd_table
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


CROWD_COLUMNS = [
    ("peer", 14), ("profile", 8), ("users", 6), ("in", 6), ("missing", 7), ("all in s", 8), ("p50 s", 6),
    ("p99 s", 6), ("max tries", 9), ("503s", 6), ("paced", 6), ("failed", 6), ("KiB/conn", 8), ("gw KiB", 7),
    ("CPU s", 6), ("db CPU s", 8), ("mq CPU s", 8), ("load CPU s", 10), ("rest MB", 7), ("RSS MB", 7),
]  # fmt: skip


def crowd_table(results: list[dict[str, Any]]) -> str:
    """One line per peer and crowd profile: users in, when, their tries (503s: handshakes refused with
    Retry-After; paced: users refused so at least once; failed: other failed tries), memory per
    connection of the server's processes (gw: of the gateway's alone), CPU as in ``table``."""
    lines = [" ".join(f"{title:>{width}}" for title, width in CROWD_COLUMNS)]
    for result in results:
        if "signed_in" not in result:
            continue
        after, cpu = result["signed_in_after_seconds"], result["cpu_seconds"]
        refusals = result["refusals"]
        cells = [
            result["peer"], result["profile"]["name"], result["users"], result["signed_in"], result["missing"],
            result["all_in_seconds"], after["p50"], after["p99"], max(map(int, result["tries"]), default=None),
            refusals.get("503", 0), result["paced_users"], sum(refusals.values()) - refusals.get("503", 0),
            result["server_kib_per_connection"], result["gateway_kib_per_connection"], cpu["server"],
            cpu["database"] or "-", cpu["broker (shared)"] or "-", cpu["load"], result.get("rest_rss_mb"),
            result["peak_rss_mb"],
        ]  # fmt: skip
        lines.append(
            " ".join(
                f"{'-' if cell is None else cell!s:>{width}}"
                for cell, (_, width) in zip(cells, CROWD_COLUMNS, strict=True)
            )
        )
    return "\n".join(lines)


def besides(results: list[dict[str, Any]]) -> list[str]:
    """Under the tables: for mixed profiles, the outcomes of the requests other than messages; for
    crowds, their sign-ins over time and tries; capacity beside the socketio floor's; and for every
    figure, what was busy while it was taken (``busy``)."""
    lines = [
        f"{result['peer']} {result['profile']['name']}, besides the messages: "
        + ", ".join(f"{what} {count}" for what, count in sorted(result["side_outcomes"].items()))
        for result in results
        if result.get("side_outcomes")
    ]
    for result in results:
        if "signed_in" in result:
            lines.append(crowd_lines(result))
    floor = next((r for r in results if r["peer"] == "socketio" and r.get("messages_per_second")), None)
    for result in results:
        if floor is not None and result is not floor and result.get("messages_per_second"):
            share = result["messages_per_second"] / floor["messages_per_second"]
            lines.append(
                f"{result['peer']} {result['profile']['name']}: {result['messages_per_second']} msg/s, "
                f"{share:.0%} of the socketio floor's {floor['messages_per_second']} (target: at least 33 %)"
            )
    lines += [busy(result) for result in results if result.get("measured_seconds")]
    return lines


def crowd_lines(result: dict[str, Any]) -> str:
    """A crowd's sign-ins per second in each 5 s (with the users in by its end), tries and failures."""
    rates = ", ".join(f"{rate:g} ({online})" for _, rate, online in result["sign_ins_per_second"])
    tries = ", ".join(f"{users} in {tries}" for tries, users in result["tries"].items())
    line = (
        f"{result['peer']} {result['profile']['name']}: sign-ins/s by 5 s (users in by its end): {rates or '-'}; "
        f"tries: {tries or '-'}; failed tries: {result['refusals'] or '-'}"
    )
    if result["first_sign_in_seconds"] is not None:
        line += f"; first sign-in of everyone {result['first_sign_in_seconds']} s ({result['first_missing']} missing)"
    return line


def busy(result: dict[str, Any], cpus: int | None = None) -> str:
    """What a figure was limited by: each group's cores over the measured time, the busiest
    process's, and the whole machine's (other work on it included), against its CPUs."""
    cpus = cpus or os.cpu_count() or 1
    seconds = result["measured_seconds"]
    groups: dict[str, float] = {}
    busiest, busiest_cpu = "", 0.0
    for label, usage in result["processes"].items():
        groups[usage["group"]] = groups.get(usage["group"], 0.0) + usage["cpu_seconds"]
        if usage["cpu_seconds"] > busiest_cpu:
            busiest, busiest_cpu = label, usage["cpu_seconds"]
    ours = sum(groups.values())
    machine = max(result.get("machine_cpu_seconds") or 0.0, ours)
    cores = ", ".join(f"{group} {cpu / seconds:.2f}" for group, cpu in sorted(groups.items()))
    line = (
        f"{result['peer']} {result['profile']['name']} busy over {seconds:g} s, in cores: {cores}; "
        f"busiest process {busiest} {busiest_cpu / seconds:.2f}; machine {machine / seconds:.2f} of {cpus} "
        f"(others' work {(machine - ours) / seconds:.2f})"
    )
    if machine / seconds >= 0.85 * cpus:
        load, others = groups.get("load", 0.0), machine - ours
        return line + (
            f": the cores were full, the limit; of their time the load processes took {load / machine:.0%}, "
            f"other work on the machine {others / machine:.0%}"
        )
    if busiest_cpu / seconds >= 0.85:
        return line + f": {busiest} was the limit, one process at a full core"
    return line + ": neither the cores nor one process were full"


def _describe(profile: Profile | Crowd) -> str:
    if isinstance(profile, Crowd):
        how = "all at once" if profile.at_once is None else f"{profile.at_once} at a time per load process"
        again = "sign in once, close, then come back " if profile.reconnect else ""
        return f"{profile.users} users {again}{how}, within {profile.within:g} s"
    load = f"{profile.rate:g} msg/s open loop" if profile.rate else "each sender waits for its reply"
    if profile.reactions:
        load += f", {profile.reactions:g} reactions/s"
    if profile.typing_every is not None:
        load += f", typing every {profile.typing_every:g} s"
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
