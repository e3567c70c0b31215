"""The server's ids: the API's shape, unique across threads and across a fork, from the kernel's random source."""

from __future__ import annotations

import os
import re
import sys
import threading

import pytest

from labkit.live.server.ids import new_id


def test_an_id_has_the_apis_shape() -> None:
    for prefix in ("resp", "msg", "fc", "call", "rs"):
        assert re.fullmatch(rf"{prefix}_[0-9a-f]{{48}}", new_id(prefix))


def test_ids_drawn_in_many_threads_never_repeat() -> None:
    drawn: list[list[str]] = [[] for _ in range(4)]

    def draw(out: list[str]) -> None:
        out.extend(new_id("resp") for _ in range(5_000))

    threads = [threading.Thread(target=draw, args=(out,)) for out in drawn]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for out in drawn for i in out]
    assert len(set(every)) == len(every) == 20_000


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="fork")
def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    new_id("resp")  # the parent's pool holds bytes the child must not reuse
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent, then leave without running the parent's cleanup
        os.close(read)
        os.write(write, " ".join(new_id("resp") for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        child = set(fh.read().split())
    os.waitpid(pid, 0)
    parent = {new_id("resp") for _ in range(10)}
    assert len(child) == 10 and not child & parent
