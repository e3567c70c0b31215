"""labkit's pytest plugin: the ``responses_api`` fixtures, and the worked examples of docs/guides/test-double.md,
each run as a test file of its own in a fresh pytest (``pytester``), as a user's suite would run them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "guides" / "test-double.md"


def examples() -> dict[str, str]:
    """``<!-- pytest-example: NAME -->`` followed by a fenced python block."""
    return dict(re.findall(r"<!-- pytest-example: (\w+) -->\s*```python\n(.*?)```", PAGE.read_text(), flags=re.S))


def _run(pytester: pytest.Pytester, source: str, passed: int) -> None:
    pytester.makepyfile(test_example=source)
    result = pytester.runpytest_subprocess("-p", "labkit.pytest_plugin", "-q", "-W", "ignore::DeprecationWarning")
    result.assert_outcomes(passed=passed)


def test_the_entry_point_names_the_plugin_module() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"labkit.pytest_plugin": "labkit.pytest_plugin"}
    import labkit.pytest_plugin as plugin

    assert callable(plugin.responses_api) and callable(plugin.responses_api_session)


def test_the_page_has_the_examples() -> None:
    assert set(examples()) == {"openai_sdk", "agents_sdk", "pydantic_ai"}


@pytest.mark.parametrize("name", ["openai_sdk", "agents_sdk", "pydantic_ai"])
def test_each_worked_example_passes(pytester: pytest.Pytester, name: str) -> None:
    if name == "pydantic_ai":
        pytest.importorskip("pydantic_ai")
    if name == "agents_sdk":
        pytest.importorskip("agents")
    _run(pytester, examples()[name], passed=1)


FIXTURES = """
import pytest
from openai import AsyncOpenAI, OpenAI

ids = []


def test_a_fresh_server_per_test(responses_api):
    r = OpenAI(base_url=responses_api.base_url, api_key="k").responses.create(model="m", input="hi")
    assert r.status == "completed" and len(responses_api.requests) == 1
    assert responses_api.last_request.input[0]["content"] == "hi"
    ids.append(responses_api.base_url)


def test_and_another(responses_api):
    assert responses_api.requests == [] and responses_api.base_url not in ids


@pytest.mark.asyncio
async def test_pytest_asyncio(responses_api):
    client = AsyncOpenAI(base_url=responses_api.base_url, api_key="k")
    async with client.responses.connect() as conn:
        await conn.response.create(model="m", input="hi")
        async for event in conn:
            if event.type == "response.completed":
                break
    assert responses_api.requests[0].model == "m"


@pytest.mark.anyio
async def test_anyio(responses_api):
    r = await AsyncOpenAI(base_url=responses_api.base_url, api_key="k").responses.create(model="m", input="x")
    assert r.output_text


@pytest.mark.responses_api(script={"turns": ["scripted"]}, workload="codex_bugfix")
def test_marker_options(responses_api):
    r = OpenAI(base_url=responses_api.base_url, api_key="k").responses.create(model="m", input="hi")
    assert r.output_text == "scripted"
    responses_api.use_script({"turns": ["changed"]})
    again = OpenAI(base_url=responses_api.base_url, api_key="k").responses.create(model="m", input="x")
    assert again.output_text == "changed"


def test_session_server_is_shared(responses_api_session):
    responses_api_session.clear()
    OpenAI(base_url=responses_api_session.base_url, api_key="k").responses.create(model="m", input="x")
    assert len(responses_api_session.requests) == 1
"""


def test_fixtures_work_in_sync_asyncio_and_anyio_tests(pytester: pytest.Pytester) -> None:
    _run(pytester, FIXTURES, passed=6)
