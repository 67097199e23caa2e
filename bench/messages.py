"""Message throughput and latency through the whole stack: N clients in one room, each sending M
messages as fast as replies come back. Prints the figures; not part of the tests.

    .venv/bin/python bench/messages.py [--clients 10] [--messages 50] [--scale messaging=2]

Needs RabbitMQ (deploy/ensure-rabbitmq.sh); starts its own Mongo stand-in and stack in a fresh
namespace, like ``boochat up``, and drops the namespace at the end. ``make bench`` is the fuller
benchmark (bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid

from websockets.asyncio.client import connect

from boochat import mongo
from boochat.settings import Settings
from boochat.supervisor import Supervisor, child_env, parse_scale, stack_processes, wait_stack_ready
from boochat.topology import drop_namespace


async def client(url: str, user_id: str) -> tuple:
    ws = await connect(url, max_size=None)
    pending: dict[str, asyncio.Future] = {}

    async def read() -> None:
        async for raw in ws:
            frame = json.loads(raw)
            if (future := pending.pop(frame.get("re") or "", None)) is not None:
                future.set_result(frame)

    reader = asyncio.create_task(read())

    async def request(type: str, data: dict) -> dict:
        frame_id = uuid.uuid4().hex
        pending[frame_id] = asyncio.get_running_loop().create_future()
        await ws.send(json.dumps({"type": type, "id": frame_id, "data": data}))
        frame = await asyncio.wait_for(pending[frame_id], 60)
        assert frame["type"] == "ok", frame
        return frame["data"]

    await request("authenticate", {"dev_user": {"id": user_id, "name": user_id}})
    return ws, reader, request


async def run(clients: int, messages: int, scale: dict[str, int]) -> None:
    async with mongo.start() as stand_in:
        settings = Settings(
            namespace=f"bench{uuid.uuid4().hex[:8]}",
            mongo_url=stand_in.url,
            dev_login=True,
            jwt_secret="bench-secret-0123456789abcdef0123456789",
            request_timeout_seconds=60,
        )
        try:
            async with Supervisor(stack_processes(settings, scale), env=child_env(settings)) as supervisor:
                await wait_stack_ready(supervisor, settings, 120)
                url = f"ws://{settings.gateway_host}:{settings.gateway_port}/ws"
                users = [f"bench-{n}" for n in range(clients)]
                connected = [await client(url, user) for user in users]
                room = (await connected[0][2]("create_room", {"name": "Bench", "participant_ids": users[1:]}))["room"]
                latencies: list[float] = []

                async def sender(request) -> None:
                    for n in range(messages):
                        started = time.perf_counter()
                        await request("send_message", {"room_id": room["id"], "content": f"message {n}"})
                        latencies.append(time.perf_counter() - started)

                started = time.perf_counter()
                await asyncio.gather(*(sender(request) for _, _, request in connected))
                elapsed = time.perf_counter() - started
                for ws, reader, _ in connected:
                    await ws.close()
                    reader.cancel()
        finally:
            await drop_namespace(settings)  # its queues and exchanges: leftovers stall the broker
    total = clients * messages
    quantiles = statistics.quantiles(latencies, n=100)
    print(f"{total} messages from {clients} clients in {elapsed:.2f} s: {total / elapsed:.0f} messages/s")
    print(
        f"reply latency ms: p50 {quantiles[49] * 1000:.1f}, p95 {quantiles[94] * 1000:.1f}, "
        f"p99 {quantiles[98] * 1000:.1f}, max {max(latencies) * 1000:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--scale", default="")
    args = parser.parse_args()
    asyncio.run(run(args.clients, args.messages, parse_scale(args.scale)))


if __name__ == "__main__":
    main()
