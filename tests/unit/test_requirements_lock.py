"""requirements.lock is the one set of runtime pins: the Modal image installs it, `make install`
installs it first, and it must satisfy pyproject.toml's ranges and match the test venv."""

from __future__ import annotations

import tomllib
from importlib.metadata import PackageNotFoundError, version

import pytest
from packaging.requirements import Requirement

from tests.conftest import REPO


def pins() -> dict[str, Requirement]:
    lines = (REPO / "requirements.lock").read_text().splitlines()
    found = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    return {r.name.lower().replace("_", "-"): r for r in found}


def test_every_dependency_is_pinned_within_its_range() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    locked = pins()
    for line in project["dependencies"]:
        wanted = Requirement(line)
        pin = locked[wanted.name.lower().replace("_", "-")]
        [exact] = list(pin.specifier)
        assert exact.operator == "==", pin
        assert wanted.specifier.contains(exact.version), f"{pin} is outside pyproject's {wanted}"


@pytest.mark.parametrize("name", sorted(pins()))
def test_the_test_venv_runs_the_pinned_version(name: str) -> None:
    [exact] = list(pins()[name].specifier)
    try:
        installed = version(name)
    except PackageNotFoundError:
        pytest.skip(f"{name} is not installed here")
    assert installed == exact.version, f"venv has {name} {installed}, the lock pins {exact.version}"
