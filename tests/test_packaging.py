"""environment.yml (conda-forge) and pyproject.toml must list the same dependencies."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# conda-forge names that differ from PyPI names.
CONDA_TO_PYPI = {"python-kaleido": "kaleido"}


def _name_spec(req: str) -> tuple[str, str]:
    req = req.split(";")[0].strip()
    m = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$", req)
    assert m, req
    return m.group(1).lower().replace("_", "-"), m.group(3).replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # environment.yml is the lab's environment: the core and the `lab` extra.
    pyproject = dict(_name_spec(r) for r in [*project["dependencies"], *project["optional-dependencies"]["lab"]])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda: dict[str, str] = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for pip_req in dep.get("pip", []):
                if not pip_req.startswith("-"):
                    name, spec = _name_spec(pip_req)
                    conda[name] = spec
            continue
        name, spec = _name_spec(dep)
        if name in ("python", "pip"):
            continue
        conda[CONDA_TO_PYPI.get(name, name)] = spec
    assert conda == pyproject
    assert project["requires-python"] == ">=3.11"


def test_websockets_stays_below_16_for_the_openai_sdk():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    spec = dict(_name_spec(r) for r in project["dependencies"])["websockets"]
    assert ">=15" in spec and "<16" in spec
