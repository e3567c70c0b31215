"""labkit's pytest plugin (entry point ``pytest11``): the simulated Responses API as a fixture.

- ``responses_api``: a fresh simulator for each test (started in a thread on its own loop, so it serves sync
  tests, ``pytest-asyncio`` and ``anyio`` tests alike); ``responses_api.requests`` is what the agent sent, typed.
- ``responses_api_session``: one simulator for the whole session (call ``clear()`` or ``use_script(...)``
  between tests as needed).
- ``@pytest.mark.responses_api(script=..., workload=..., tps=..., ...)``: options of the per-test server
  (:class:`labkit.live.server.SimServer`'s keywords; ``script`` a :class:`~labkit.live.server.script.Script`, a
  mapping, or a YAML file). Default: workload ``fast_test``, ``instant=True``.

Guide: docs/guides/test-double.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from labkit.live.testing import ResponsesApi

# The simulator is imported by the fixtures, not here: pytest loads this plugin in every run of every project
# that has labkit installed, and the server's imports cost about 0.35 s of start-up that most runs never use.

MARKER = "responses_api"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(script=None, **options): options of the per-test simulated Responses API (SimServer keywords)",
    )


@pytest.fixture
def responses_api(request: pytest.FixtureRequest) -> Iterator[ResponsesApi]:
    """A simulated Responses API for this test; ``.base_url`` for the client, ``.requests`` for assertions."""
    marker = request.node.get_closest_marker(MARKER)
    options = dict(marker.kwargs) if marker is not None else {}
    from labkit.live.testing import ResponsesApi

    with ResponsesApi(**options) as api:
        yield api


@pytest.fixture(scope="session")
def responses_api_session() -> Iterator[ResponsesApi]:
    """One simulated Responses API for the whole test session."""
    from labkit.live.testing import ResponsesApi

    with ResponsesApi() as api:
        yield api
