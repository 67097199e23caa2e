"""The ``boochat`` command: run the whole stack, one worker, the gateway, or issue a session token.

    boochat --version                            the installed version
    boochat up [--split] [--scale messaging=2,gateway=2]   everything, in the foreground (Ctrl-C stops it):
                                                 one process, or with --split (implied by --scale) one per service
    boochat worker NAME                          one worker: workers.<NAME>.app.create_app(settings)
    boochat gateway                              the gateway: gateway.app.serve(settings)
    boochat token USER_ID --name N [--email E] [--picture URL]
    boochat invite [--uses N] [--days D]         print an invite link (the running stack's users worker makes it)
    boochat replay WORKER [--from first|TIME] [--dry-run]   rebuild a worker's projections from the event log
    boochat drop NAMESPACE [--yes-really]        delete a namespace's queues, exchanges and databases
    boochat dead list | show N | redrive N... | redrive --all   the messages parked in <ns>.dead
    boochat backup DIR | restore DIR             a copy of the data folder and the event log, and back

Settings come from the environment (boochat.settings.Settings, BOOCHAT_*). ``up`` fills in what an
operator has not set from its data folder (BOOCHAT_DATA_DIR, boochat.datadir): a Mongo stand-in
keeping its databases there, and the session secret made there at the first start. ``replay`` and
``token`` run with the same folder find them. Dev login is on only with BOOCHAT_DEV_LOGIN=true. A
bad value stops a command with one JSON line naming the setting; unknown BOOCHAT_* variables are
named in a warning. Every line on stderr is JSON (boochat.logs).
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import importlib
import os
import signal
import sys
import uuid
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from types import ModuleType
from typing import Any

import aio_pika
import structlog
from aio_pika.exceptions import AMQPError, ChannelNotFoundEntity
from pymongo.errors import PyMongoError

from boochat import dead, mongo, together, topology
from boochat.datadir import SECRET, Claim, DataDir, DataDirError
from boochat.health import QueueMetrics
from boochat.logs import configure, route_uncaught
from boochat.progress import Console
from boochat.rpc import RpcClient
from boochat.settings import Settings, load, unknown_variables
from boochat.supervisor import (
    WORKERS,
    Supervisor,
    available_workers,
    child_env,
    exit_when_supervisor_dies,
    parse_scale,
    run_until_signalled,
    stack_processes,
    wait_stack_ready,
)
from contracts.common import parse_time
from contracts.envelope import Command
from contracts.internal import OperatorInvite, OperatorInviteReply
from contracts.requests import MAX_INVITE_SECONDS
from contracts.shapes import Invite

log = structlog.get_logger("cli")


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    configure("boochat")
    route_uncaught()
    try:
        args.run(args)
    except SystemExit as stop:
        if not isinstance(stop.code, str):
            raise
        log.error("stopped", reason=stop.code)  # a refusal to run: one JSON line, no traceback
        raise SystemExit(1) from None


def _settings(service: str) -> Settings:
    """This process's settings, with logging configured for ``service``; unknown BOOCHAT_* variables
    (pydantic-settings ignores them) are named in a warning, with the setting probably meant."""
    configure(service)
    settings = load()
    configure(service, settings.log_level)
    known = [f"BOOCHAT_{name.upper()}" for name in Settings.model_fields]
    for name in unknown_variables(os.environ):
        meant = difflib.get_close_matches(name.upper(), known, n=1)
        log.warning("unknown_setting", variable=name, did_you_mean=meant[0] if meant else None)
    return settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="boochat", description="Boochat chat-and-meetups server.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('boochat')}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="run the whole stack in the foreground")
    up.add_argument("--split", action="store_true", help="a process per worker and for the gateway, under a supervisor")
    up.add_argument("--scale", default="", help="replicas per service, e.g. messaging=2,gateway=2 (implies --split)")
    up.set_defaults(run=_up)

    worker = commands.add_parser("worker", help="run one worker")
    worker.add_argument("name", choices=WORKERS, help="which worker: " + ", ".join(WORKERS))
    worker.add_argument("--supervised", action="store_true", help=argparse.SUPPRESS)
    worker.set_defaults(run=_worker)

    gateway = commands.add_parser("gateway", help="run the WebSocket gateway")
    gateway.add_argument("--supervised", action="store_true", help=argparse.SUPPRESS)
    gateway.set_defaults(run=_gateway)

    replay = commands.add_parser("replay", help="rebuild a worker's projections from the event log")
    replay.add_argument("name", choices=WORKERS, metavar="WORKER", help="whose projections: " + ", ".join(WORKERS))
    replay.add_argument(
        "--from",
        dest="start",
        default="first",
        type=_offset,
        help="'first' (default: rebuild from the start into fresh collections, then switch to them) or an "
        "ISO 8601 time (re-apply from then to the live collections)",
    )
    replay.add_argument(
        "--dry-run",
        action="store_true",
        help="say what would be rebuilt and how many events it would read; rebuild nothing",
    )
    replay.set_defaults(run=_replay)

    drop = commands.add_parser(
        "drop", help="delete a stopped namespace's queues and exchanges (and databases, with BOOCHAT_MONGO_URL)"
    )
    drop.add_argument("namespace", type=_namespace, help="the namespace to delete, as in BOOCHAT_NAMESPACE")
    drop.add_argument("--yes-really", action="store_true", help="needed to drop the default namespace")
    drop.set_defaults(run=_drop)

    parked = commands.add_parser("dead", help="list, show and re-drive the messages parked in <ns>.dead")
    actions = parked.add_subparsers(required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="one line each: number, queue it came from, attempts, id, error")
    listing.set_defaults(run=_dead_list)
    show = actions.add_parser("show", help="one parked message: its headers and body")
    show.add_argument("number", type=_positive, help="its number in `boochat dead list`")
    show.set_defaults(run=_dead_show)
    redrive = actions.add_parser("redrive", help="send parked messages back to the queue they came from")
    redrive.add_argument("numbers", nargs="*", type=_positive, help="their numbers in `boochat dead list`")
    redrive.add_argument("--all", action="store_true", help="every parked message")
    redrive.set_defaults(run=_dead_redrive)

    backup = commands.add_parser(
        "backup", help="copy the data folder's databases, its session secret and the event log, while the stack runs"
    )
    backup.add_argument("folder", type=Path, metavar="DIR", help="a new (or empty) folder for the copy")
    backup.set_defaults(run=_backup)
    restore = commands.add_parser("restore", help="put a backup back into an empty data folder and namespace")
    restore.add_argument("folder", type=Path, metavar="DIR", help="the folder boochat backup wrote")
    restore.set_defaults(run=_restore)

    token = commands.add_parser("token", help="print a session token for a user")
    token.add_argument("user_id", help="the user's id (the token's sub)")
    token.add_argument("--name", required=True, help="the user's display name")
    token.add_argument("--email", default="", help="the user's email, if any")
    token.add_argument("--picture", default=None, help="URL of the user's picture, if any")
    token.set_defaults(run=_token)

    invite = commands.add_parser("invite", help="print an invite link to the web client (the first person's, say)")
    invite.add_argument("--uses", type=_positive, default=1, help="how many people may join by it (default 1)")
    invite.add_argument("--days", type=_positive, default=7, help="days it stays valid (default 7, at most 90)")
    invite.set_defaults(run=_invite)
    return parser


# up ---------------------------------------------------------------------------------------------


def _up(args: argparse.Namespace) -> None:
    try:
        scale = parse_scale(args.scale)
    except ValueError as error:
        raise SystemExit(f"boochat up: {error}") from None
    asyncio.run(_run_stack(scale, split=args.split or bool(scale)))


async def _run_stack(scale: dict[str, int], split: bool) -> None:
    """The gateway and every worker in this process (``boochat.together``), or with ``split`` a
    process each under a supervisor; on the data folder, with its stand-in and secret."""
    settings = _settings("supervisor" if split else "boochat")
    folder = DataDir.at(settings.data_dir)
    async with AsyncExitStack() as resources:
        try:
            claim = resources.enter_context(folder.claim())
        except DataDirError as error:
            raise SystemExit(f"boochat up: {error}") from None
        local: dict[str, Any] = {"data_dir": folder.path}
        if not settings.mongo_url:
            stand_in = await resources.enter_async_context(
                mongo.start(databases=folder.databases, folder=folder.run, hold=[claim.fd])
            )
            claim.advertise(stand_in.url)
            resources.callback(claim.withdraw)  # before the stand-in stops
            log.info("mongo_stand_in_started", url=stand_in.url, databases=str(folder.databases))
            local["mongo_url"] = stand_in.url
        if not settings.jwt_secret:
            local["jwt_secret"] = _session_secret(claim)
        settings = settings.model_copy(update=local)
        if not settings.dev_login:
            log.info("dev_login_off", message="dev_user sign-ins are refused; BOOCHAT_DEV_LOGIN=true turns them on")
        if not split:
            log.info("starting", data_dir=str(folder.path))
            await together.serve(settings, available_workers(), _announce)
            return
        try:
            processes = stack_processes(settings, scale)
        except ValueError as error:
            raise SystemExit(f"boochat up: {error}") from None
        log.info("starting", processes=[process.name for process in processes], data_dir=str(folder.path))
        supervisor = Supervisor(processes, env=child_env(settings))
        await run_until_signalled(supervisor, lambda: _announce_when_ready(supervisor, settings))


async def _announce(serving: together.Together) -> None:
    # The one line on stdout: scripts wait for it.
    print(f"Boochat is ready: {serving.ws_url}", flush=True)


def _session_secret(claim: Claim) -> str:
    """The data folder's session secret, made at the first start (BOOCHAT_JWT_SECRET is unset)."""
    try:
        secret, made = claim.session_secret()
    except DataDirError as error:
        raise SystemExit(f"boochat up: {error}") from None
    if made:
        log.info("session_secret_created", path=str(claim.folder.path / SECRET))
    return secret


async def _announce_when_ready(supervisor: Supervisor, settings: Settings) -> None:
    waited = 0
    while True:
        try:
            await wait_stack_ready(supervisor, settings, timeout=15)
            break
        except TimeoutError:
            waited += 15
            log.warning("still_waiting_for_ready", seconds=waited)
    for process in supervisor.processes:
        if process.ws_url:
            # The one line on stdout per gateway: scripts wait for it.
            print(f"Boochat is ready: {process.ws_url}", flush=True)
    await _invite_first_person(settings)


async def _invite_first_person(settings: Settings) -> None:
    """While nobody has signed in yet, log an invite link for the first person (stdout keeps its
    one line per gateway)."""
    try:
        invite = await _operator_invite(settings, OperatorInvite(only_without_users=True))
    except SystemExit as error:
        log.warning("first_invite_failed", error=str(error))
        return
    if invite is not None:
        log.info(
            "nobody_has_signed_in_yet", message="open this invite link to join as the first person", link=invite.link
        )


# worker, gateway --------------------------------------------------------------------------------


def _worker(args: argparse.Namespace) -> None:
    module = _import(f"workers.{args.name}.app", f"worker {args.name!r} is not written yet")
    settings = _settings(args.name)
    if args.supervised:
        exit_when_supervisor_dies()
    app = module.create_app(settings)
    if settings.metrics_port:
        _watch_queues(app, module.WORKER, settings)
    asyncio.run(app.run())  # FastStream stops gracefully on SIGINT/SIGTERM by itself


def _watch_queues(app: Any, worker: Any, settings: Settings) -> None:
    """The depth and consumers of the worker's queues (its commands', its reactions' and
    projections') on its /metrics, from the broker (boochat.health.QueueMetrics)."""
    names = settings.names
    queues = [names.command_queue(worker.name), *(names.reaction_queue(worker.name, n) for n in worker.interests())]
    metrics = QueueMetrics(settings.amqp_url, queues)
    app.after_startup(metrics.start)
    app.on_shutdown(metrics.stop)


def _gateway(args: argparse.Namespace) -> None:
    module = _import("gateway.app", "the gateway is not written yet")
    settings = _settings("gateway")
    if args.supervised:
        exit_when_supervisor_dies()
    asyncio.run(_until_signalled(module.serve(settings)))


async def _until_signalled(serving: Coroutine[Any, Any, None]) -> None:
    """Run ``serving``; SIGINT/SIGTERM cancel it, which is how serve() is told to stop."""
    task = asyncio.ensure_future(serving)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        if not task.cancelled():
            raise


def _import(module: str, missing: str) -> ModuleType:
    """Import lazily: workers and the gateway are written separately and may not exist yet."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        # Only the module itself (or its package) missing means "not written"; re-raise the rest.
        if error.name is not None and (module == error.name or module.startswith(error.name + ".")):
            raise SystemExit(f"boochat: {missing} (no module {module})") from None
        raise


# replay -----------------------------------------------------------------------------------------


def _offset(value: str) -> str | datetime:
    if value == "first":
        return value
    try:
        return parse_time(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"'first' or an ISO 8601 time with Z or an offset ({error})") from None


def _replay(args: argparse.Namespace) -> None:
    """Progress on stdout (a bar on a terminal); a failure of the broker or the database ends the
    command with one line naming it, and exit status 1."""
    module = _import(f"workers.{args.name}.app", f"worker {args.name!r} is not written yet")
    replay = _import("workers.runtime.replay", "replay is not written yet")
    settings = _with_stack_database(_settings(f"replay-{args.name}"), "boochat replay")
    console = Console()
    projections = ", ".join(module.WORKER.projections) or "no projections"
    console.say(f"{'dry run of' if args.dry_run else 'replaying'} {args.name} from {args.start}: {projections}")
    try:
        plan = asyncio.run(replay.replay(module.WORKER, settings, args.start, dry_run=args.dry_run, console=console))
    except (AMQPError, OSError) as error:
        raise SystemExit(f"boochat replay: RabbitMQ failed: {error!r}") from None
    except PyMongoError as error:
        reason = str(error).split(", Topology Description")[0]  # the rest is a page of server state
        raise SystemExit(f"boochat replay: MongoDB failed: {type(error).__name__}: {reason}") from None
    except TimeoutError:
        raise SystemExit(f"boochat replay: the event log delivered nothing for {replay.IDLE_TIMEOUT:.0f} s") from None
    except replay.ReplayError as error:
        raise SystemExit(f"boochat replay: {error}") from None
    rebuilt = ", ".join(plan.collections) or "nothing"
    if args.dry_run:
        console.say(f"dry run: would read {plan.events} events, apply {plan.applicable} and rebuild {rebuilt}")
    elif args.start == "first":
        console.say(f"caught up: {plan.applied} events applied; {rebuilt} rebuilt")
    else:
        console.say(f"caught up: {plan.applied} events applied again to {rebuilt}")


def _with_stack_database(settings: Settings, command: str) -> Settings:
    """``settings`` with BOOCHAT_MONGO_URL, when unset, taken from the ``boochat up`` running on
    BOOCHAT_DATA_DIR (its stand-in); one line saying why when there is none."""
    if settings.mongo_url:
        return settings
    try:
        url = DataDir.at(settings.data_dir).mongo_url()
    except DataDirError as error:
        raise SystemExit(f"{command}: BOOCHAT_MONGO_URL is not set and {error}") from None
    return settings.model_copy(update={"mongo_url": url})


# drop -------------------------------------------------------------------------------------------


def _namespace(value: str) -> str:
    if not value or value != value.strip():
        raise argparse.ArgumentTypeError("a namespace name, as in BOOCHAT_NAMESPACE")
    return value


def _drop(args: argparse.Namespace) -> None:
    if args.namespace == Settings.model_fields["namespace"].default and not args.yes_really:
        raise SystemExit(f"boochat drop: {args.namespace!r} is the default namespace; add --yes-really to drop it")
    settings = Settings(namespace=args.namespace)
    dropped = asyncio.run(topology.drop_namespace(settings))
    print(
        f"dropped {args.namespace}: {len(dropped.queues)} queues, {len(dropped.exchanges)} exchanges, "
        + (f"{len(dropped.databases)} databases" if settings.mongo_url else "no databases (BOOCHAT_MONGO_URL unset)"),
        flush=True,
    )
    if dropped.unread:
        unread = "; ".join(f"{worker}: {error}" for worker, error in dropped.unread.items())
        raise SystemExit(f"boochat drop: event queues of workers whose tables fail to import may be left ({unread})")


# dead -------------------------------------------------------------------------------------------


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError("a message's number in `boochat dead list` (1, 2, ...)")
    return int(value)


def _parked(settings: Settings, work: Coroutine[Any, Any, Any]) -> Any:
    """Run ``work`` on ``<ns>.dead``; a missing queue or an unreachable broker ends in one line."""
    try:
        return asyncio.run(work)
    except ChannelNotFoundEntity:
        raise SystemExit(f"boochat dead: there is no queue {settings.names.dead_letters} (which namespace?)") from None
    except (AMQPError, OSError) as error:
        raise SystemExit(f"boochat dead: RabbitMQ failed: {error!r}") from None


def _dead_list(args: argparse.Namespace) -> None:
    settings = _settings("dead")
    parked = _parked(settings, dead.peek(settings))
    print(f"{len(parked)} parked in {settings.names.dead_letters}", flush=True)
    for item in parked:
        print(item.line(), flush=True)


def _dead_show(args: argparse.Namespace) -> None:
    settings = _settings("dead")
    parked = _parked(settings, dead.peek(settings, limit=args.number))
    if len(parked) < args.number:
        raise SystemExit(f"boochat dead show: no message {args.number} (there are {len(parked)})")
    print(parked[-1].describe(), flush=True)


def _dead_redrive(args: argparse.Namespace) -> None:
    if args.all == bool(args.numbers):
        raise SystemExit("boochat dead redrive: name the messages' numbers, or --all")
    settings = _settings("dead")
    redriven = _parked(settings, dead.redrive(settings, None if args.all else set(args.numbers)))
    print(f"redriven {len(redriven.moved)}", flush=True)
    for item in redriven.moved:
        print(f"{item.number}\t{item.message_id or '-'}\t-> {item.queue}", flush=True)
    if redriven.kept:
        kept = "; ".join(f"{item.number}: {why}" for item, why in redriven.kept)
        raise SystemExit(f"boochat dead redrive: left parked: {kept}")


# backup, restore --------------------------------------------------------------------------------


def _backup(args: argparse.Namespace) -> None:
    from boochat import backup  # here: it imports the replay machinery, which no other command needs

    settings = _settings("backup")
    try:
        manifest = asyncio.run(backup.backup(settings, args.folder))
    except backup.BackupError as error:
        raise SystemExit(f"boochat backup: {error}") from None
    except (AMQPError, OSError) as error:
        raise SystemExit(f"boochat backup: RabbitMQ failed (or the files): {error!r}") from None
    databases = manifest.databases
    copied = (
        f"{len(databases)} databases ({sum(d.documents for d in databases)} documents)"
        if databases is not None
        else "no databases"
    )
    secret = ", the session secret" if manifest.session_secret else ""
    print(f"backed up {settings.namespace} to {args.folder}: {copied}, {manifest.log.entries} log entries{secret}")
    for missing in manifest.not_covered:
        print(f"not in this backup: {missing}", flush=True)


def _restore(args: argparse.Namespace) -> None:
    from boochat import backup

    settings = _settings("restore")
    try:
        manifest = asyncio.run(backup.restore(settings, args.folder))
    except backup.BackupError as error:
        raise SystemExit(f"boochat restore: {error}") from None
    except (AMQPError, OSError) as error:
        raise SystemExit(
            f"boochat restore: stopped, part restored: {error!r}; stop, empty the data folder, boochat drop "
            f"{settings.namespace}, and restore again"
        ) from None
    databases = f"{len(manifest.databases)} databases" if manifest.databases is not None else "no databases"
    secret = ", the session secret" if manifest.session_secret else ""
    print(
        f"restored {args.folder} (taken {manifest.created_at}) into {settings.data_dir} and {settings.namespace}: "
        f"{databases}, {manifest.log.entries} log entries{secret}"
    )
    for missing in manifest.not_covered:
        print(f"not in this backup: {missing}", flush=True)


# token ------------------------------------------------------------------------------------------


def _token(args: argparse.Namespace) -> None:
    auth = _import("gateway.auth", "the gateway's auth module is not written yet")
    settings = _settings("token")
    if not settings.jwt_secret:
        settings = settings.model_copy(update={"jwt_secret": _data_dir_secret(settings)})
    token, expires_at = auth.issue_token(settings, args.user_id, args.name, email=args.email, picture=args.picture)
    print(token, flush=True)
    print(f"expires at {expires_at.isoformat()}", file=sys.stderr)


# invite -----------------------------------------------------------------------------------------


def _invite(args: argparse.Namespace) -> None:
    """One line on stdout: the link. The running stack of this namespace makes the invite."""
    if args.days > MAX_INVITE_SECONDS // 86400:
        raise SystemExit(f"boochat invite: --days is at most {MAX_INVITE_SECONDS // 86400}")
    settings = _settings("invite")
    wanted = OperatorInvite(max_uses=args.uses, expires_in=args.days * 86400)
    invite = asyncio.run(_operator_invite(settings, wanted))
    assert invite is not None  # made whether or not anyone has signed in
    print(invite.link, flush=True)
    print(f"{invite.max_uses} use(s), expires at {invite.expires_at.isoformat()}", file=sys.stderr)


async def _operator_invite(settings: Settings, wanted: OperatorInvite) -> Invite | None:
    """Ask the users worker of the running stack (its namespace, its broker) for an invite."""
    try:
        connection = await aio_pika.connect(settings.amqp_url)
    except (AMQPError, OSError) as error:
        raise SystemExit(f"boochat invite: RabbitMQ failed: {error!r}") from None
    async with connection:
        rpc = RpcClient(await connection.channel(), settings.names, settings.request_timeout_seconds)
        await rpc.start()
        command = Command(type="operator_invite", id=uuid.uuid4().hex, user_id="boochat", data=wanted.model_dump())
        reply = await rpc.call("users", command)
    if reply.error is not None:
        raise SystemExit(
            f"boochat invite: the users worker did not make it ({reply.error.code}: {reply.error.message}); "
            f"is boochat up running with BOOCHAT_NAMESPACE={settings.namespace}?"
        )
    return OperatorInviteReply.model_validate(reply.ok).invite


def _data_dir_secret(settings: Settings) -> str:
    """The session secret ``boochat up`` made in BOOCHAT_DATA_DIR (BOOCHAT_JWT_SECRET is unset)."""
    folder = DataDir.at(settings.data_dir)
    try:
        secret = folder.session_secret()
    except DataDirError as error:
        raise SystemExit(f"boochat token: {error}") from None
    if secret is None:
        raise SystemExit(
            f"boochat token: BOOCHAT_JWT_SECRET is not set and {folder.path} (BOOCHAT_DATA_DIR) holds no "
            "session secret: boochat up makes one at its first start"
        )
    return secret


if __name__ == "__main__":
    main()
