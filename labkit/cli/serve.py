"""``labkit serve``: run the simulated Responses API server until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from typing import TYPE_CHECKING

from labkit.live.netaddr import is_loopback_host
from labkit.live.server import Faults, SimServer
from labkit.live.server.engine import Resolved
from labkit.live.server.heap import freeze_start_up
from labkit.live.server.options import (
    CONNECTION_LIFETIME_S,
    DEFAULT_HEADER_TIMEOUT_S,
    DEFAULT_HTTP_IDLE_TIMEOUT_S,
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_WS_IDLE_TIMEOUT_S,
)
from labkit.live.server.script import Script, ScriptError
from labkit.live.server.session import MAX_QUEUED, MAX_QUEUED_PER_LANE
from labkit.live.server.state import DEFAULT_MAX_STORED_BYTES, ResponseRecord

if TYPE_CHECKING:
    from labkit.live.server.replay import ReplayServer
from labkit.model import Profile, load_profile, load_workload, preset_names, workload_names

NAME = "serve"
HELP = "Run the simulated Responses API (WebSocket mode and HTTP/SSE on one port) until Ctrl-C or SIGTERM."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # One group per concern, in the order of the flags in `labkit serve --help`.
    _add_listening(parser)
    _add_model(parser)
    _add_access(parser)
    _add_replicas(parser)
    _add_limits(parser)
    _add_self_check(parser)
    _add_answers(parser)
    _add_bounds(parser)
    _add_faults(parser)


def _add_listening(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("where to listen")
    group.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    group.add_argument("--port", type=int, default=8765, help="port (0 picks a free one; default 8765)")


def _add_model(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("the simulated model")
    group.add_argument("--profile", default="websocket", help=f"latency preset: {', '.join(preset_names())}")
    group.add_argument("--workload", default="codex_bugfix", help=f"workload: {', '.join(workload_names())}")
    group.add_argument("--tps", type=float, default=None, help="decode tokens per second (default: the profile's)")
    group.add_argument("--seed", type=int, default=None, help="workload seed (default: the workload's)")
    group.add_argument("--instant", action="store_true", help="no waits and no pacing (benchmarks, fuzzing)")


def _add_access(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("access")
    group.add_argument(
        "--api-key",
        default=os.environ.get("LABKIT_SERVER_API_KEY"),
        help="require 'Authorization: Bearer KEY' (default: $LABKIT_SERVER_API_KEY, else no check; prefer the "
        "variable: a key on the command line is visible to every user of the machine in the process list)",
    )


def _add_replicas(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("API replicas")
    group.add_argument("--replicas", type=int, default=None, help="API replicas (default: the profile's)")
    group.add_argument("--routing", choices=("sticky", "random"), default=None, help="replica routing")


def _add_limits(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("WebSocket mode and storage limits")
    group.add_argument("--lifetime", type=float, default=CONNECTION_LIFETIME_S, help="WebSocket connection lifetime, s")
    group.add_argument("--max-message-bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES, help="largest request")
    group.add_argument(
        "--max-stored-bodies",
        type=int,
        default=10_000,
        help="stored responses readable with GET /v1/responses/{id} (older ones can still be continued from)",
    )


def _add_self_check(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("instead of serving")
    group.add_argument(
        "--self-check",
        choices=("ws", "http"),
        default=None,
        help="instead of serving: run one rollout of the workload against a fresh loopback server over this "
        "transport and print, as JSON, how late the server was against its plan (seconds)",
    )


def _add_answers(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scripted or replayed answers (instead of the workload's)")
    group.add_argument(
        "--script",
        default=None,
        metavar="FILE.yaml",
        help="a scripted model: what it does turn by turn or by rule (tool calls, texts, failures); "
        "see docs/guides/test-double.md",
    )
    group.add_argument(
        "--replay",
        default=None,
        metavar="DIR",
        help="answer requests with the events of a recording made by 'labkit record' (a request that does not "
        "match fails loudly)",
    )
    group.add_argument(
        "--replay-timing",
        choices=("recorded", "profile", "instant"),
        default="recorded",
        help="with --replay: send events at their recorded times, paced by --profile, or at once (default recorded)",
    )


def _add_bounds(parser: argparse.ArgumentParser) -> None:
    bounds = parser.add_argument_group("bounds (docs/guides/wire.md, 'Bounds')")
    bounds.add_argument(
        "--header-timeout", type=float, default=DEFAULT_HEADER_TIMEOUT_S, help="s for a new connection's first request"
    )
    bounds.add_argument(
        "--http-idle-timeout",
        type=float,
        default=DEFAULT_HTTP_IDLE_TIMEOUT_S,
        help="s a kept-alive HTTP connection may idle",
    )
    bounds.add_argument(
        "--ws-idle-timeout",
        type=float,
        default=DEFAULT_WS_IDLE_TIMEOUT_S,
        help="s a WebSocket may go without a client frame (pings count) while no response is in flight",
    )
    bounds.add_argument(
        "--max-connections",
        type=int,
        default=None,
        help="open connections at most (default: the open-files limit, raised to its hard limit, less 64)",
    )
    bounds.add_argument(
        "--max-queued-per-lane",
        type=int,
        default=MAX_QUEUED_PER_LANE,
        help=f"WebSocket creates waiting on one lane at most (default {MAX_QUEUED_PER_LANE})",
    )
    bounds.add_argument(
        "--max-queued",
        type=int,
        default=MAX_QUEUED,
        help=f"WebSocket creates waiting on one connection at most (default {MAX_QUEUED})",
    )
    bounds.add_argument(
        "--max-stored",
        type=int,
        default=100_000,
        help="stored responses that can be continued from (default 100000; the oldest are forgotten)",
    )
    bounds.add_argument(
        "--max-stored-bytes",
        type=int,
        default=DEFAULT_MAX_STORED_BYTES,
        help=f"JSON bytes of the readable stored bodies together (default {DEFAULT_MAX_STORED_BYTES}; oldest out)",
    )


def _add_faults(parser: argparse.ArgumentParser) -> None:
    faults = parser.add_argument_group("fault injection (seeded)")
    faults.add_argument("--fault-seed", type=int, default=0)
    faults.add_argument("--drop-after-events", type=int, default=None, help="cut a connection after N events")
    faults.add_argument("--drop-rate", type=float, default=0.0, help="per response: cut at a random event")
    faults.add_argument("--stall-rate", type=float, default=0.0, help="per response: stall before decoding")
    faults.add_argument("--stall-s", type=float, default=0.0, help="length of a stall, s")
    faults.add_argument("--evict-rate", type=float, default=0.0, help="per request: empty the connection cache")
    faults.add_argument("--fail-rate", type=float, default=0.0, help="per response: fail with a 5xx")


def run(args: argparse.Namespace) -> int:
    # Validate everything before binding, so bad input is a one-line error (exit 2).
    profile = load_profile(args.profile)
    workload = load_workload(args.workload)
    if args.self_check:
        from labkit.live.selfcheck import self_check

        report = asyncio.run(self_check(profile, workload, tps=args.tps, transport=args.self_check, seed=args.seed))
        print(json.dumps(report, indent=2))
        return 0
    if args.replay:
        return _replay(args, profile)
    script = _script(args.script)
    faults = Faults(
        seed=args.fault_seed,
        drop_after_events=args.drop_after_events,
        drop_rate=args.drop_rate,
        stall_rate=args.stall_rate,
        stall_s=args.stall_s,
        evict_rate=args.evict_rate,
        fail_rate=args.fail_rate,
    )
    server = SimServer(
        profile,
        workload,
        host=args.host,
        port=args.port,
        tps=args.tps,
        seed=args.seed,
        instant=args.instant,
        api_key=args.api_key or None,
        replicas=args.replicas,
        routing=args.routing,
        faults=faults,
        connection_lifetime_s=args.lifetime,
        max_message_bytes=args.max_message_bytes,
        max_stored_bodies=args.max_stored_bodies,
        max_stored=args.max_stored,
        max_stored_bytes=args.max_stored_bytes,
        max_queued_per_lane=args.max_queued_per_lane,
        max_queued=args.max_queued,
        script=script,
        header_timeout_s=args.header_timeout,
        http_idle_timeout_s=args.http_idle_timeout,
        ws_idle_timeout_s=args.ws_idle_timeout,
        max_connections=args.max_connections,
    )
    if _key_on_command_line():
        print(
            "labkit serve: warning: --api-key on the command line shows the key to every user of this machine "
            "(ps); set LABKIT_SERVER_API_KEY instead",
            file=sys.stderr,
        )
    if not is_loopback_host(args.host) and not args.api_key:
        print(
            f"labkit serve: warning: listening on {args.host} without --api-key: anyone who can reach it can use it",
            file=sys.stderr,
        )
    try:
        asyncio.run(_serve(server))
    except OSError as exc:
        print(f"labkit serve: error: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def _key_on_command_line() -> bool:
    return any(a == "--api-key" or a.startswith("--api-key=") for a in sys.argv[1:])


async def _serve(server: SimServer) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows' default loop
            loop.add_signal_handler(sig, stop.set)
    async with server:
        mode = "instant" if server.engine.instant else f"{server.profile.decode_tps:g} tokens/s"
        print(
            f"labkit serve: {server.base_url}  (WebSocket mode: {server.ws_url}; "
            f"profile {server.profile.name}, workload {server.workload.name}, {mode}; Ctrl-C stops)",
            flush=True,
        )
        hint = turn_limit_hint(server)
        if hint:
            print(hint, flush=True)
        watch = RolloutWatch(server)
        freeze_start_up()  # this process only serves from here on (labkit.live.server.heap)
        await stop.wait()
        stopped = watch.stopped_with_calls_owed()
        if stopped and server.engine.script is None:
            turns = ", ".join(str(n) for n in sorted(set(stopped)))
            print(
                f"labkit serve: {len(stopped)} rollout(s) stopped with tool calls unanswered after {turns} model "
                "call(s): a client's own turn limit? End rollouts early with --workload fast_test or --script "
                "FILE.yaml",
                file=sys.stderr,
                flush=True,
            )
        print("labkit serve: stopping", file=sys.stderr, flush=True)


#: The Agents SDK's default ``max_turns``: a client with a turn limit stops a longer rollout with an error.
CLIENT_TURN_LIMIT = 10


def turn_limit_hint(server: SimServer) -> str | None:
    """How to end a rollout early, when the workload's rollout is longer than common clients' turn limits."""
    if server.engine.script is not None or server.workload.turns <= CLIENT_TURN_LIMIT:
        return None
    short = load_workload("fast_test").turns
    return (
        f"labkit serve: the model answers after {server.workload.turns} calls (workload {server.workload.name}); "
        f"a client that stops after its own turn limit (the Agents SDK's max_turns={CLIENT_TURN_LIMIT}) fails "
        f"first: end rollouts early with --workload fast_test ({short} calls) or script them with --script FILE.yaml"
    )


def _script(path: str | None) -> Script | None:
    if path is None:
        return None
    try:
        return Script.from_file(path)
    except ScriptError as exc:
        raise ValueError(str(exc)) from None


def _replay(args: argparse.Namespace, profile: Profile) -> int:
    from labkit.live.server.replay import ReplayServer

    server = ReplayServer(args.replay, host=args.host, port=args.port, timing=args.replay_timing, profile=profile)
    try:
        asyncio.run(_serve_replay(server))
    except OSError as exc:
        print(f"labkit serve: error: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


async def _serve_replay(server: ReplayServer) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with server:
        n = sum(1 for e in server.recording.exchanges if e.is_create)
        print(
            f"labkit serve: {server.base_url}  (WebSocket mode: {server.ws_url}; replaying {n} recorded responses, "
            f"{server.timing} timing; Ctrl-C stops)",
            flush=True,
        )
        freeze_start_up()
        await stop.wait()
        if server.mismatches:
            print(f"labkit serve: {len(server.mismatches)} request(s) matched no recording", file=sys.stderr)
        print("labkit serve: stopping", file=sys.stderr, flush=True)


class RolloutWatch:
    """The latest turn of each conversation the server saw, to tell when clients stopped before the final answer.

    The engine's :class:`~labkit.live.server.engine.TurnWatcher`: a turn counts as a conversation's latest from
    the moment it is resolved (so one still running when the server stops shadows the turn it answers), and
    brings its record when it ends."""

    def __init__(self, server: SimServer, max_conversations: int = 10_000) -> None:
        #: conversation key -> (turn index, its record once it finished).
        self._latest: dict[str, tuple[int, ResponseRecord | None]] = {}
        self._max = max_conversations
        server.engine.watcher = self

    def resolved(self, resolved: Resolved) -> None:
        key, index = resolved.conversation_key, resolved.spec.index
        previous = self._latest.get(key)
        if previous is None or index >= previous[0]:
            self._latest[key] = (index, None)
            if len(self._latest) > self._max:
                self._latest.pop(next(iter(self._latest)))

    def ended(self, conversation_key: str, turn: int, record: ResponseRecord | None) -> None:
        latest = self._latest.get(conversation_key)
        if latest is not None and latest[0] == turn:
            self._latest[conversation_key] = (turn, record)

    def stopped_with_calls_owed(self) -> list[int]:
        """Model calls made by each conversation whose last response asked for tool calls nobody answered."""
        return [r.model_turns for _, r in self._latest.values() if r is not None and r.call_ids]
