"""The README's generated tables stay in step with the data they come from."""

from pathlib import Path

from labkit.cli.params import markdown_parameters

README = Path(__file__).resolve().parent.parent / "README.md"


def test_parameter_table_matches_the_calibration_data():
    text = README.read_text()
    start = text.index("<!-- params:begin -->") + len("<!-- params:begin -->")
    end = text.index("<!-- params:end -->")
    assert text[start:end].strip() == markdown_parameters().strip(), "regenerate with `labkit params`"


def test_readme_names_the_two_setup_commands_first():
    text = README.read_text()
    first_code = text[text.index("```") : text.index("```", text.index("```") + 3)]
    assert "make lab" in first_code and "make test" in first_code
