"""Prints the dependencies of bcai (and of the extras named as arguments) from
pyproject.toml, so that the Makefile installs exactly what the project declares
without resolving bcai-native from an index (it is built from native/rust)."""

import sys
import tomllib
from pathlib import Path

project = tomllib.loads(Path(__file__).parent.parent.joinpath("pyproject.toml").read_text())[
    "project"
]
deps = [d for d in project["dependencies"] if not d.startswith("bcai-native")]
for extra in sys.argv[1:]:
    deps += project["optional-dependencies"][extra]
print(" ".join(deps))
