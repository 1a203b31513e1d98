"""DESIGN.md §3, enforced: lower layers never import higher ones, and the
pure layers (native wrappers, foundation, consensus) import no I/O, clock or
randomness modules. Imports are read from the source with `ast`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "bcai"

# Ordered from the bottom up; a module may import only its own layer or lower.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("native", ("bcai_native", "bcai._kernels", "bcai.kernels")),
    ("foundation", ("bcai.errors", "bcai.codec", "bcai.crypto", "bcai")),
    ("consensus", ("bcai.chain", "bcai.pouw")),
    ("compute", ("bcai.vm", "bcai.ml", "bcai.mining")),
    ("storage", ("bcai.store",)),
    ("network", ("bcai.net",)),
    ("roles", ("bcai.node",)),
    ("interfaces", ("bcai.cli", "bcai.sdk", "bcai.dashboard", "bcai.__main__")),
]
PURE = {"native", "foundation", "consensus"}
IMPURE_MODULES = {
    "trio",
    "lmdb",
    "socket",
    "asyncio",
    "selectors",
    "time",
    "random",
    "threading",
    "subprocess",
    "noise",
    "http",
    "urllib",
    "multiprocessing",
    "datetime",
}


def layer_of(module: str) -> int:
    best, best_len = -1, -1
    for rank, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = rank, len(p)
    return best


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, module) for each import; `from m import n` counts as `m.n`, so
    that `from bcai import _kernels` is seen as the native module it is."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found += [(node.lineno, f"{name}.{a.name}") for a in node.names]
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_belongs_to_a_layer() -> None:
    orphans = [module_name(p) for p in SOURCES if layer_of(module_name(p)) < 0]
    assert not orphans, f"place these modules in a layer (tests/test_layers.py): {orphans}"


@pytest.mark.parametrize("path", SOURCES, ids=module_name)
def test_imports_respect_layers(path: Path) -> None:
    me = module_name(path)
    mine = layer_of(me)
    problems = []
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    for line, name in imports_of(path, package):
        top = name.split(".")[0]
        if top in ("bcai", "bcai_native"):
            theirs = layer_of(name)
            if theirs > mine:
                problems.append(
                    f"{path.name}:{line} {me} ({LAYERS[mine][0]}) imports "
                    f"{name} ({LAYERS[theirs][0]})"
                )
        elif LAYERS[mine][0] in PURE and top in IMPURE_MODULES:
            problems.append(f"{path.name}:{line} pure module {me} imports {name}")
    assert not problems, "\n".join(problems)


def test_checker_catches_violations(tmp_path: Path) -> None:
    """The rule itself can fail: a consensus module importing the node, or trio."""
    assert layer_of("bcai.chain.state") == 2
    assert layer_of("bcai.node.mempool") == 6
    assert layer_of("bcai") == 1 and layer_of("bcai.cli._demo") == 7
    bad = tmp_path / "bad.py"
    bad.write_text("import trio\nfrom bcai.node import x\nfrom . import y\n")
    names = [n for _, n in imports_of(bad, "bcai.chain")]
    assert names == ["trio", "bcai.node.x", "bcai.chain.y"]
    assert layer_of(names[1]) > layer_of("bcai.chain.state")
