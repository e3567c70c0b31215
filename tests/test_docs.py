"""The README stays a five-minute read whose links resolve, and the docs' generated tables match their data."""

from __future__ import annotations

import re
from pathlib import Path

from labkit.cli.params import markdown_parameters

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def test_readme_fits_in_five_minutes():
    assert len(README.read_text().splitlines()) <= 200


def test_readme_names_the_two_setup_commands_first():
    text = README.read_text()
    first_code = text[text.index("```") : text.index("```", text.index("```") + 3)]
    assert "make lab" in first_code and "make test" in first_code


def test_readme_links_resolve():
    text = README.read_text()
    targets = [t for t in re.findall(r"\]\(([^)#]+)\)", text) if not re.match(r"^[a-z]+:", t)]
    assert targets
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_readme_never_calls_the_source_the_seed():
    assert "the seed" not in README.read_text().lower()


def test_parameter_table_matches_the_calibration_data():
    text = (ROOT / "docs" / "reference" / "parameters.md").read_text()
    start = text.index("<!-- params:begin -->") + len("<!-- params:begin -->")
    end = text.index("<!-- params:end -->")
    assert text[start:end].strip() == markdown_parameters().strip(), "regenerate with `labkit params --markdown`"


def test_every_guide_is_in_the_site_navigation():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs" / "guides").glob("*.md"))
    assert pages
    assert [p for p in pages if p not in nav] == []


def test_readme_headline_is_what_labkit_headline_prints():
    from labkit.analysis.headline import headline

    assert headline().text() in README.read_text(), "paste `labkit headline` into the README"


def test_site_notebooks_carry_figures_without_machine_paths_or_widget_state():
    import nbformat

    from labkit.report.site import PLOTLY_MIME, WIDGET_MIME, prepare_for_site

    figure = {"data": [{"type": "scatter", "y": [1, 2]}], "layout": {"height": 320, "title": {"text": "</script>"}}}
    nb = nbformat.v4.new_notebook(metadata={"widgets": {"state": {}}})
    cell = nbformat.v4.new_code_cell(f"out_dir = '{ROOT}/build/figures/01_bottleneck'")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={PLOTLY_MIME: figure, "text/plain": "Figure"}),
        nbformat.v4.new_output("display_data", data={WIDGET_MIME: {"model_id": "x"}, "text/plain": "VBox()"}),
    ]
    nb.cells = [cell]
    prepare_for_site(nb, root=ROOT)
    assert "widgets" not in nb.metadata
    assert cell.source == "out_dir = 'build/figures/01_bottleneck'"
    shown = cell.outputs[0]["data"]["text/html"]
    assert "labkit-plotly-figure" in shown and "height:320px" in shown and '</script>"' not in shown
    assert "need a running Python kernel" in cell.outputs[1]["data"]["text/html"]
    assert WIDGET_MIME not in cell.outputs[1]["data"]


def test_sphinx_roles_become_cross_references():
    import importlib.util

    spec = importlib.util.spec_from_file_location("mkdocs_hooks", ROOT / "tools" / "mkdocs_hooks.py")
    assert spec and spec.loader
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    out = hooks.rewrite_roles("a :class:<code>~labkit.model.Profile</code> and :func:<code>sweep</code>")
    assert ":class:" not in out and ":func:" not in out
    assert '<autoref optional identifier="labkit.model.Profile"><code>Profile</code></autoref>' in out
