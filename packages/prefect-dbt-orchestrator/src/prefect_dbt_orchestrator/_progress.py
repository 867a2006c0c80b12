"""Live progress of a build on the terminal, for the CLI.

:class:`ProgressExecutor` wraps the executor the orchestrator uses and tells a
:class:`Progress` when dbt starts and finishes nodes, so the display shows what really runs in
both execution modes. On a terminal it keeps a live status region (done/total, running nodes,
failures) under the scrolling list of finished nodes; elsewhere (CI logs, pipes) it prints one
plain line per finished node.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from dbt_graph import ExecutionRequest, ExecutionResult, Executor, Node, NodeResult, SourceFreshness

_WORDS = {
    "success": "OK",
    "pass": "PASS",
    "warn": "WARN",
    "fail": "FAIL",
    "error": "ERROR",
    "runtime error": "ERROR",
    "skipped": "SKIP",
    "no-op": "NO-OP",
    "partial success": "PARTIAL",
    "cached": "CACHED",
}
_STYLES = {
    "OK": "green",
    "PASS": "green",
    "CACHED": "cyan",
    "WARN": "yellow",
    "FAIL": "red",
    "ERROR": "red",
    "PARTIAL": "red",
    "SKIP": "dim",
    "NO-OP": "dim",
}
_FAILED = frozenset({"FAIL", "ERROR", "PARTIAL"})


def node_title(node: Node) -> str:
    """``model orders``, ``test not_null_orders_id``: how a line names a node."""
    return f"{node.resource_type.value} {node.display_name}"


class Progress:
    """Counts finished nodes and renders them, live on a terminal or as plain lines.

    Thread-safe: the executor reports from the task runner's threads.

    Args:
        total: How many nodes the build plans, if known.
        stream: Where to write (default: standard output).
        interactive: Live display (default: whether ``stream`` is a terminal).
    """

    def __init__(
        self,
        total: int | None = None,
        stream: TextIO | None = None,
        interactive: bool | None = None,
    ) -> None:
        import sys

        self.total = total
        self.stream = stream or sys.stdout
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.outcomes: dict[str, str] = {}
        self.running: dict[str, str] = {}
        self.started_at = time.monotonic()
        self._lock = threading.RLock()
        self._live: Any = None
        self._console: Any = None

    def __enter__(self) -> Progress:
        if self.interactive:
            from rich.console import Console
            from rich.live import Live

            self._console = Console(file=self.stream)
            self._live = Live(
                get_renderable=self._render,
                console=self._console,
                refresh_per_second=8,
                transient=True,
            )
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def started(self, nodes: Iterable[Node]) -> None:
        """dbt started these nodes."""
        with self._lock:
            for node in nodes:
                self.running[node.unique_id] = node_title(node)

    def finished(self, uid: str, title: str, status: str, detail: str = "") -> None:
        """A node reached an outcome (a dbt status, ``cached`` or ``skipped``)."""
        word = _WORDS.get(status, status.upper())
        with self._lock:
            self.running.pop(uid, None)
            self.outcomes[uid] = word
            self._line(len(self.outcomes), word, title, detail)

    @property
    def failures(self) -> int:
        """Nodes whose latest outcome is a failure (a retried node that passed is not one)."""
        with self._lock:
            return sum(1 for w in self.outcomes.values() if w in _FAILED)

    def elapsed(self) -> float:
        """Seconds since the display started."""
        return time.monotonic() - self.started_at

    def _counter(self, done: int) -> str:
        if self.total is None:
            return f"[{done:>3}]"
        width = len(str(self.total))
        return f"[{done:>{width}}/{self.total}]"

    def _line(self, done: int, word: str, title: str, detail: str) -> None:
        suffix = f" {detail}" if detail else ""
        if self._console is not None:
            from rich.text import Text

            text = Text(f"{self._counter(done)} ")
            text.append(f"{word:<7}", style=_STYLES.get(word, ""))
            text.append(f" {title}{suffix}")
            self._console.print(text, highlight=False)
        else:
            self.stream.write(f"{self._counter(done)} {word:<7} {title}{suffix}\n")
            self.stream.flush()

    def _render(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        with self._lock:
            done, running = len(self.outcomes), list(self.running.values())
            failures = self.failures
        bar = Table.grid(padding=(0, 1))
        total = self.total if self.total else max(done, 1)
        bar.add_row(
            ProgressBar(total=total, completed=min(done, total), width=30),
            Text(f"{done}/{self.total if self.total is not None else '?'}"),
            Text(f"{failures} failed", style="red") if failures else Text(""),
            Text(f"{self.elapsed():.1f}s", style="dim"),
        )
        shown = ", ".join(running[:4]) + (f" (+{len(running) - 4})" if len(running) > 4 else "")
        return Group(bar, Text(f"running: {shown}" if running else "", style="dim"))


class ProgressExecutor:
    """An executor that reports to a :class:`Progress` and delegates the work.

    Args:
        inner: The executor that runs dbt.
        progress: The display to report to.
    """

    def __init__(self, inner: Executor, progress: Progress) -> None:
        self.inner = inner
        self.progress = progress

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes this class lacks; never for its own (e.g. while unpickling).
        if name in ("inner", "progress") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def resolve_manifest(
        self, *, target: str | None = None, vars: Mapping[str, Any] | None = None
    ) -> Path:
        return self.inner.resolve_manifest(target=target, vars=vars)

    def execute(self, request: ExecutionRequest) -> ExecutionResult:
        self.progress.started(request.nodes)
        try:
            execution = self.inner.execute(request)
        except BaseException as exc:
            for node in request.nodes:
                self.progress.finished(node.unique_id, node_title(node), "error", str(exc))
            raise
        titles = {n.unique_id: node_title(n) for n in request.nodes}
        for uid, result in execution.results.items():
            title = titles.get(uid, uid)
            self.progress.finished(uid, title, result.status.value, _detail(result))
        return execution

    def source_freshness(
        self,
        sources: Sequence[str],
        *,
        target: str | None = None,
        vars: Mapping[str, Any] | None = None,
    ) -> Mapping[str, SourceFreshness]:
        return self.inner.source_freshness(sources, target=target, vars=vars)

    def close(self) -> None:
        self.inner.close()


def _detail(result: NodeResult) -> str:
    parts = []
    if result.execution_time:
        parts.append(f"in {result.execution_time:.2f}s")
    if result.is_failure or result.status.value == "warn":
        message = " ".join((result.message or "").split())
        if message:
            parts.append(f"- {message[:160]}")
    return " ".join(parts)
