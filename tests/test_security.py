"""Security defaults: loopback bind, the bearer-token check, message size limits, keys kept out of logs,
error messages and exported files, and no eval/pickle of anything a client sends."""

from __future__ import annotations

import argparse
import ast
import json
import logging
import pickle
from pathlib import Path

import aiohttp
import pytest

from labkit.cli import serve as serve_cmd
from labkit.live.server import SimServer

pytestmark = pytest.mark.live

SECRET = "sk-labkit-test-5ecret-0123456789abcdef"
WRONG = "sk-wrong-key-fedcba9876543210"
ROOT = Path(__file__).resolve().parent.parent
CREATE = {"type": "response.create", "model": "m", "input": "hello"}


def _body(**extra: object) -> dict:
    return {"model": "m", "input": "hello", **extra}


async def _ws_events(ws: aiohttp.ClientWebSocketResponse, limit: int = 2000) -> list[dict]:
    """Events until a terminal one (completed, failed or error)."""
    events = []
    for _ in range(limit):
        msg = await ws.receive(timeout=10)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        event = json.loads(msg.data)
        events.append(event)
        if event["type"] in ("response.completed", "response.failed", "error"):
            return events
    raise AssertionError("no terminal event")


# -- bind address ---------------------------------------------------------------------------------------


async def test_server_binds_loopback_by_default() -> None:
    async with SimServer(instant=True) as server:
        assert server.host == "127.0.0.1"
        addresses = server._runner.addresses  # the sockets aiohttp actually listens on
        assert addresses and all(addr[0] == "127.0.0.1" for addr in addresses)
    parser = argparse.ArgumentParser()
    serve_cmd.add_arguments(parser)
    assert parser.parse_args([]).host == "127.0.0.1"


@pytest.mark.parametrize(
    ("host", "key", "warned"),
    [("0.0.0.0", None, True), ("0.0.0.0", SECRET, False), ("127.0.0.1", None, False), ("::1", None, False)],
)
def test_serve_warns_when_exposed_without_key(
    host: str, key: str | None, warned: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[SimServer] = []

    async def fake_serve(server: SimServer) -> None:  # never binds: the test checks the decision only
        started.append(server)

    monkeypatch.setattr(serve_cmd, "_serve", fake_serve)
    monkeypatch.delenv("LABKIT_SERVER_API_KEY", raising=False)
    parser = argparse.ArgumentParser()
    serve_cmd.add_arguments(parser)
    argv = ["--host", host, "--port", "0"] + (["--api-key", key] if key else [])
    assert serve_cmd.run(parser.parse_args(argv)) == 0
    err = capsys.readouterr().err
    assert ("warning" in err and "--api-key" in err) == warned
    assert SECRET not in err
    assert started and started[0].host == host


# -- bearer token ----------------------------------------------------------------------------------------


async def test_bearer_token_is_required_on_every_route() -> None:
    async with SimServer(instant=True, api_key=SECRET) as server, aiohttp.ClientSession() as http:
        url = f"{server.base_url}/responses"
        for headers in (
            {},
            {"Authorization": f"Bearer {WRONG}"},
            {"Authorization": SECRET},
            {"Authorization": "Basic x"},
        ):
            async with http.post(url, json=_body(), headers=headers) as r:
                assert r.status == 401
                text = await r.text()
                assert json.loads(text)["error"]["code"] == "invalid_api_key"
                assert SECRET not in text and WRONG not in text
            async with http.get(f"{server.base_url}/labkit/metrics", headers=headers) as r:
                assert r.status == 401
            # WebSocket mode refuses the upgrade itself with the same 401 body (no socket is opened).
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(server.ws_url, headers=headers)
            assert refused.value.status == 401
        good = {"Authorization": f"Bearer {SECRET}"}
        async with http.post(url, json=_body(), headers=good) as r:
            assert r.status == 200
            assert (await r.json())["status"] == "completed"
        async with http.ws_connect(server.ws_url, headers=good) as ws:
            await ws.send_str(json.dumps(CREATE))
            assert (await _ws_events(ws))[-1]["type"] == "response.completed"


# -- message size ----------------------------------------------------------------------------------------


async def test_max_message_size_is_enforced() -> None:
    limit = 4096
    big = "x" * (limit * 3)
    async with SimServer(instant=True, max_message_bytes=limit) as server, aiohttp.ClientSession() as http:
        async with http.post(f"{server.base_url}/responses", json=_body(input=big)) as r:
            assert r.status == 413
            assert big not in await r.text()
        async with http.ws_connect(server.ws_url) as ws:
            await ws.send_str(json.dumps({**CREATE, "input": big}))
            events = await _ws_events(ws)
            assert events[-1]["type"] == "error"
            assert events[-1]["error"]["code"] == "message_too_large"
            # The connection stays usable after a rejected message.
            await ws.send_str(json.dumps(CREATE))
            assert (await _ws_events(ws))[-1]["type"] == "response.completed"
        # Far beyond the limit, the transport itself refuses (close 1009 or a reset) instead of buffering
        # it; the server keeps serving other connections.
        async with http.ws_connect(server.ws_url) as ws:
            try:
                await ws.send_bytes(b"{" * (limit * 1024 + (2 << 20)))
                msg = await ws.receive(timeout=10)
                assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.TEXT)
            except ConnectionError:
                pass
        async with http.ws_connect(server.ws_url) as ws:
            await ws.send_str(json.dumps(CREATE))
            assert (await _ws_events(ws))[-1]["type"] == "response.completed"


# -- keys never leak ---------------------------------------------------------------------------------------


async def test_api_keys_never_in_logs_errors_or_exports(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labkit.live.runner import RolloutError, run_rollout
    from labkit.viz import export

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    seen: list[str] = []
    async with SimServer(instant=True, api_key=SECRET) as server, aiohttp.ClientSession() as http:
        url = f"{server.base_url}/responses"
        for key in (WRONG, SECRET):
            headers = {"Authorization": f"Bearer {key}"}
            for body in (b"{not json", json.dumps(_body(bogus=1)).encode(), json.dumps(_body()).encode()):
                async with http.post(url, data=body, headers=headers) as r:
                    seen.append(await r.text())
                    seen.append(json.dumps(dict(r.headers)))
            if key == SECRET:
                async with http.ws_connect(server.ws_url, headers=headers) as ws:
                    for msg in ("{not json", json.dumps({**CREATE, "model": 5}), json.dumps(CREATE)):
                        await ws.send_str(msg)
                        seen.extend(json.dumps(e) for e in await _ws_events(ws))
            else:
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await http.ws_connect(server.ws_url, headers=headers)
                seen.append(str(refused.value))
        # A full rollout with the key from the environment, and one with a wrong key that fails.
        result = await run_rollout("ws", "fast_test", base_url=server.base_url)
        with pytest.raises(RolloutError) as failed:
            await run_rollout("http", "fast_test", base_url=server.base_url, api_key=WRONG)
        seen.append(str(failed.value))
        seen.append(repr(failed.value.exchange))
        async with http.get(f"{server.base_url}/labkit/metrics", headers={"Authorization": f"Bearer {SECRET}"}) as r:
            seen.append(await r.text())
        seen.append(repr(server))
        seen.append(json.dumps(server.metrics))
    seen.append(caplog.text)
    seen.append(repr(result.exchanges))
    seen.append(json.dumps(result.transcript))
    # Exported files: the spans table and a figure in every format this machine can write.
    result.spans.to_csv(tmp_path / "spans.csv")
    result.spans.to_json(tmp_path / "spans.json")
    from labkit.viz import gantt

    export(gantt(result.spans), "rollout", out_dir=tmp_path, formats=("html", "svg"))
    exported = list(tmp_path.iterdir())
    assert len(exported) >= 3
    for blob in seen:
        assert SECRET not in blob and WRONG not in blob
    for path in exported:
        data = path.read_bytes()
        assert SECRET.encode() not in data and WRONG.encode() not in data, path.name


# -- no eval / pickle of client data --------------------------------------------------------------------------

DANGEROUS_CALLS = {"eval", "exec", "compile", "__import__", "loads", "load", "literal_eval"}
DANGEROUS_MODULES = {"pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle", "yaml", "jsonpickle"}


def _network_facing_sources() -> list[Path]:
    files = [ROOT / "labkit" / "wire" / "protocol.py", ROOT / "labkit" / "live" / "runner.py"]
    files += sorted((ROOT / "labkit" / "live" / "server").glob("*.py"))
    files += sorted((ROOT / "labkit" / "live" / "client").glob("*.py"))
    return [f for f in files if f.exists()]


def test_no_eval_or_pickle_in_code_that_reads_client_data() -> None:
    sources = _network_facing_sources()
    assert len(sources) >= 4
    for path in sources:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                for name in names:
                    assert (name or "").split(".")[0] not in DANGEROUS_MODULES, f"{path.name}: imports {name}"
            if isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Name):
                    assert func.id not in {"eval", "exec", "compile", "__import__"}, f"{path.name}: {func.id}()"
                if isinstance(func, ast.Attribute) and func.attr in DANGEROUS_CALLS:
                    owner = ast.unparse(func.value)
                    # json.loads is the one deserializer allowed on client data.
                    assert owner == "json" or func.attr not in {"loads", "load"} or owner.endswith("json"), (
                        f"{path.name}: {owner}.{func.attr}()"
                    )
                    assert func.attr not in {"literal_eval"}, f"{path.name}: literal_eval"


async def test_pickled_and_code_payloads_are_just_bad_input() -> None:
    class Boom:
        def __reduce__(self):  # if the server ever unpickled this, the test process would raise
            return (RuntimeError, ("unpickled!",))

    payloads: list[bytes | str] = [
        pickle.dumps(Boom()),
        pickle.dumps({"type": "response.create", "model": "m", "input": "x"}),
        "__import__('os').system('true')",
        '{"type": "response.create", "model": "m", "input": "x", "__class__": "object"}',
    ]
    async with SimServer(instant=True) as server, aiohttp.ClientSession() as http:
        async with http.ws_connect(server.ws_url) as ws:
            for p in payloads:
                await (ws.send_bytes(p) if isinstance(p, bytes) else ws.send_str(p))
                event = (await _ws_events(ws))[-1]
                assert event["type"] == "error"
                assert event["error"]["code"] in ("invalid_json", "unknown_parameter")
        for p in payloads:
            data = p if isinstance(p, bytes) else p.encode()
            async with http.post(f"{server.base_url}/responses", data=data) as r:
                assert r.status == 400


async def test_simserver_warns_when_exposed_without_a_key(caplog, monkeypatch):
    import logging

    import labkit.live.server.app as app
    from labkit.live.server import SimServer

    with caplog.at_level(logging.WARNING, logger="labkit.live.server"):
        async with SimServer(profile="websocket", instant=True):
            pass
        assert not [r for r in caplog.records if "without an api_key" in r.getMessage()]
        # Take 127.0.0.1 for an exposed address, so the test still binds only to loopback.
        monkeypatch.setattr(app, "is_loopback_host", lambda host: False)
        async with SimServer(profile="websocket", instant=True, api_key="sk-test-secret"):
            pass
        assert not [r for r in caplog.records if "without an api_key" in r.getMessage()]
        async with SimServer(profile="websocket", instant=True):
            pass
    warned = [r for r in caplog.records if "without an api_key" in r.getMessage()]
    assert len(warned) == 1 and "127.0.0.1" in warned[0].getMessage()
