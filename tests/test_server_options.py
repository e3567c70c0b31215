"""The server's bounds and timeouts (`ServerBounds`) and `labkit serve`'s argument groups: no sockets."""

from __future__ import annotations

import dataclasses

import pytest

from labkit.cli import build_parser
from labkit.live.server import SimServer
from labkit.live.server.options import ServerBounds

#: Each field with a value it must refuse.
BAD = {
    "connection_lifetime_s": 0,
    "max_message_bytes": 1023,
    "max_active_responses": 0,
    "max_lanes": 0,
    "max_queued_per_lane": 0,
    "max_queued": True,
    "max_stored": 0,
    "max_stored_bodies": -1,
    "max_stored_bytes": 1.5,
    "max_cached_bytes": -1,
    "max_connections": 0,
    "header_timeout_s": 0.0,
    "http_idle_timeout_s": float("nan"),
    "ws_idle_timeout_s": -1,
    "shutdown_timeout_s": -0.5,
}


def test_every_field_is_checked():
    assert set(BAD) == {f.name for f in dataclasses.fields(ServerBounds)}


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_bound_names_its_field(name):
    with pytest.raises(ValueError, match=f"^{name}: "):
        ServerBounds(**{name: BAD[name]})
    # The same check, through SimServer's keyword argument of the same name.
    with pytest.raises(ValueError, match=f"^{name}: "):
        SimServer(**{name: BAD[name]})


def test_the_server_keeps_its_bounds_and_reads_them_by_their_old_names():
    server = SimServer(
        instant=True, connection_lifetime_s=5, max_lanes=3, max_queued=7, ws_idle_timeout_s=9, max_cached_bytes=0
    )
    bounds = server.bounds
    assert bounds == ServerBounds(
        connection_lifetime_s=5.0, max_lanes=3, max_queued=7, ws_idle_timeout_s=9.0, max_cached_bytes=0
    )
    assert isinstance(bounds.connection_lifetime_s, float) and isinstance(bounds.ws_idle_timeout_s, float)
    assert (server.connection_lifetime_s, server.max_lanes, server.max_queued) == (5.0, 3, 7)
    assert server.ws_idle_timeout_s == 9.0 and server.max_connections is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        bounds.max_lanes = 4  # type: ignore[misc]
    assert bounds.to_dict()["max_lanes"] == 3 and set(bounds.to_dict()) == set(BAD)


def test_defaults_are_the_servers_and_the_clis():
    args = build_parser().parse_args(["serve"])
    b = ServerBounds()
    assert args.lifetime == b.connection_lifetime_s == 3600.0
    assert args.max_message_bytes == b.max_message_bytes == 16 * 1024 * 1024
    assert (args.max_stored, args.max_stored_bodies, args.max_stored_bytes) == (
        b.max_stored,
        b.max_stored_bodies,
        b.max_stored_bytes,
    )
    assert (args.max_queued_per_lane, args.max_queued) == (b.max_queued_per_lane, b.max_queued)
    assert (args.header_timeout, args.http_idle_timeout, args.ws_idle_timeout) == (
        b.header_timeout_s,
        b.http_idle_timeout_s,
        b.ws_idle_timeout_s,
    )
    assert args.max_connections is b.max_connections is None


def test_serve_help_lists_every_flag_under_a_group():
    parser = build_parser()
    serve = next(a for a in parser._actions if a.dest == "command").choices["serve"]  # type: ignore[index]
    groups = {g.title: [a.option_strings[0] for a in g._group_actions] for g in serve._action_groups}
    # Only --help is left outside a group.
    assert groups["options"] == ["-h"]
    assert groups["where to listen"] == ["--host", "--port"]
    assert groups["bounds (docs/guides/wire.md, 'Bounds')"][:2] == ["--header-timeout", "--http-idle-timeout"]
    flags = [f for title, fs in groups.items() if title != "options" for f in fs]
    every = [a.option_strings[0] for a in serve._actions if a.option_strings[0] != "-h"]
    assert flags == every and len(every) == 32
