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


def test_readme_images_carry_the_captions_of_the_run_that_drew_them():
    """`labkit figures --update-docs` draws docs/0*.png and writes their captions from the same figures."""
    import json

    captions = json.loads((ROOT / "docs" / "captions.json").read_text())
    for page in (README, ROOT / "docs" / "guides" / "notebooks.md"):
        shown = re.findall(r"!\[([^\]]*)\]\((?:[^)\s]*/)?(\d\d_\w+)\.png\)", page.read_text())
        assert shown, page
        for alt, name in shown:
            assert alt == captions.get(name), f"{page.name}: {name}.png's caption; run `make docs-images`"


def test_readme_numbers_equal_labkit_headline_and_the_image(capsys):
    """The README prints `labkit headline` as it prints now, and its image says the same crossover speed."""
    import json

    from labkit.cli import main

    assert main(["headline"]) == 0
    printed = capsys.readouterr().out.rstrip("\n")
    assert printed in README.read_text(), "paste `labkit headline` into the README"
    crossover = re.search(r"equals inference\s+([\d,]+)", printed)
    assert crossover, printed
    caption = json.loads((ROOT / "docs" / "captions.json").read_text())["01_bottleneck"]
    assert re.search(r"inference at ([\d,]+) tokens/s", caption).group(1) == crossover.group(1), caption


def test_make_figures_leaves_the_committed_images_alone():
    from labkit.cli import build_parser
    from labkit.cli.figures import tour_folder

    def folder(*argv: str) -> Path | None:
        return tour_folder(build_parser("figures").parse_args(["figures", *argv]))

    assert folder() == Path("figures") / "docs"
    assert folder("--out", "build/x") == Path("build/x/docs")
    assert folder("--update-docs") == Path("docs")
    assert folder("--no-docs") is None


def test_labkit_bench_writes_to_an_ignored_folder_unless_recording():
    import subprocess

    from labkit.bench.runner import BENCH_DIR, RUNS_DIR

    assert RUNS_DIR.parent == BENCH_DIR
    ignored = subprocess.run(["git", "check-ignore", "-q", str(RUNS_DIR / "des.json")], cwd=ROOT, check=False)
    assert ignored.returncode == 0, "data/bench/runs/ must be ignored by git"
    assert subprocess.run(["git", "check-ignore", "-q", "figures/docs/01_bottleneck.png"], cwd=ROOT).returncode == 0
