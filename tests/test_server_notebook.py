"""A server started in one notebook cell keeps serving in the next (ipykernel keeps its loop running)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.live

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")


@pytest.mark.slow
def test_server_lives_across_notebook_cells() -> None:
    cells = [
        "from labkit.live.server import SimServer\n"
        "server = await SimServer.start(profile='websocket', workload='fast_test', tps=4000)",
        "import httpx\n"
        "async with httpx.AsyncClient(base_url=server.base_url) as c:\n"
        "    r = await c.post('/responses', json={'model': 'm', 'input': 'hi'})\n"
        "assert r.status_code == 200 and r.json()['status'] == 'completed', r.text",
        "import websockets, json\n"
        "async with websockets.connect(server.ws_url) as ws:\n"
        "    await ws.send(json.dumps({'type': 'response.create', 'model': 'm', 'input': 'hi'}))\n"
        "    while (ev := json.loads(await ws.recv()))['type'] != 'response.completed':\n"
        "        pass\n"
        "print(server.metrics['responses'])",
        "await server.stop()\nprint(server.running)",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in cells])
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3")
    client.execute()
    outputs = ["".join(o.get("text", "") for o in cell.outputs) for cell in nb.cells]
    assert outputs[2].strip() == "2"
    assert outputs[3].strip() == "False"
