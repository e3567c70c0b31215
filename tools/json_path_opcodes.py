"""Python bytecode instructions a non-streaming create runs, by function (deterministic, unlike its time).

    PYTHONPATH=$PWD .venv/bin/python tools/json_path_opcodes.py [--top N]

Runs the create path as ``tools/json_path_stages.py --tight`` does (parse, resolve, answer, respond; no aiohttp
around it), warms it with 3,000 creates, then traces 50 more with ``sys.settrace`` opcode events and prints the
instructions per create, in all and for the ``N`` functions that run the most. In the server a create's Python
costs ~2.5x its tight-loop time (caches and predictors cold after aiohttp's and the kernel's work), so the count
of instructions it runs, and of functions it calls, is a steadier guide than a timer.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
from types import CodeType, FrameType
from typing import Any

from labkit.bench.server import _create
from labkit.live.server import SimServer
from labkit.live.server.app import _json_answer
from labkit.live.server.jsonin import load_body
from labkit.model import load_profile, load_workload
from labkit.wire.protocol import parse_create_json


def _where(code: CodeType) -> str:
    path = code.co_filename.split("site-packages/")[-1].split("labkit/")[-1]
    return f"{code.co_name} ({path}:{code.co_firstlineno})"


async def _count(creates: int) -> collections.Counter[str]:
    body = _create(websocket=False, stream=False).encode()
    server = SimServer(profile=load_profile("websocket"), workload=load_workload("codex_bugfix"), instant=True)
    engine, loop = server.engine, asyncio.get_running_loop()

    def create() -> None:
        request = parse_create_json(load_body(body, "body"))
        resolved = engine.resolve(request, transport="http", t0=loop.time())
        assert engine.due_at_once(resolved)
        _json_answer(engine.answer_at_once(resolved, loop.time()))

    for _ in range(3000):
        create()
    counts: collections.Counter[str] = collections.Counter()

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes, frame.f_trace_lines = True, False
        if event == "opcode":
            counts[_where(frame.f_code)] += 1
        return trace

    sys.settrace(trace)
    try:
        for _ in range(creates):
            create()
    finally:
        sys.settrace(None)
    del counts[_where(create.__code__)]  # the driver's own lines
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, default=25)
    top = parser.parse_args().top
    creates = 50
    counts = asyncio.run(_count(creates))
    print(f"{sum(counts.values()) / creates:,.0f} instructions in {len(counts)} functions per create")
    for where, n in counts.most_common(top):
        print(f"  {n / creates:6.0f}  {where}")


if __name__ == "__main__":
    main()
