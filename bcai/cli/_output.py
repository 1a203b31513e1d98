"""How the CLI speaks: `--json` prints one JSON document on stdout; human
output uses rich tables. Errors go to stderr with their reason code, and
the exit code says what kind of failure it was (EXIT_CODES)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILED = 1  # the operation failed: rejected, not found, a check failed
EXIT_USAGE = 2  # bad usage, config or input
EXIT_UNREACHABLE = 3  # no node answered, or the data dir is in use
EXIT_CRASHED = 4  # a node service crashed (the node stopped cleanly)

EXIT_CODES_HELP = """exit codes:
  0  success
  1  the operation failed (transaction rejected, not found, check failed)
  2  bad usage, configuration or input
  3  no node reachable at the API URL, or the data dir is locked by another node
  4  a node service crashed (the node stopped and closed its store)
  130 interrupted"""


class Out:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.console = Console(highlight=False)
        self.err = Console(stderr=True, highlight=False)

    def result(self, doc: Any, human: str | Table | None = None) -> None:
        """Prints `doc` as JSON, or `human` (default: key/value lines)."""
        if self.as_json:
            sys.stdout.write(json.dumps(doc, indent=2) + "\n")
            sys.stdout.flush()
        elif human is not None:
            self.console.print(human)
        elif isinstance(doc, dict):
            self.console.print(kv_table(doc))
        else:
            self.console.print(str(doc))

    def error(self, code: str, message: str, exit_code: int) -> int:
        if self.as_json:
            sys.stdout.write(json.dumps({"error": {"code": code, "message": message}}) + "\n")
        self.err.print(f"[bold red]error[/] [{code}] {message}", markup=True, highlight=False)
        return exit_code


def kv_table(doc: dict[str, Any], title: str | None = None) -> Table:
    table = Table(show_header=False, title=title, box=None, pad_edge=False)
    table.add_column(style="bold cyan")
    table.add_column()
    for key, value in doc.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict | list) else str(value))
    return table


def rows_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    table = Table(title=title)
    for c in columns:
        table.add_column(c)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    return table


def format_bcai(units: int) -> str:
    whole, frac = divmod(units, 10**9)
    return f"{whole}.{frac:09d}".rstrip("0").rstrip(".") + " BCAI"


def wait_with_progress(label: str, show: bool, wait: Callable[[Callable[[str], None]], T]) -> T:
    """`wait(tick)` under a spinner reading `label (state)`, where `tick(state)`
    updates the state (hidden when not `show`: --json)."""
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, transient=True, disable=not show) as progress:
        task = progress.add_task(label, total=None)
        return wait(lambda state: progress.update(task, description=f"{label} ({state})"))
