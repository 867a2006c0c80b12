"""Peak memory of a whole process tree, sampled from /proc (through psutil) in a thread.

RSS counts a page once per process that maps it, so summing it over forked workers (the dbt
executor forks its workers from a zygote that has already imported dbt) counts their shared
pages several times. PSS divides each shared page among the processes that share it, so the
sum of PSS over a tree is the memory the tree really holds. Both sums are reported; the
comparisons use PSS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

MIB = 1024 * 1024


@dataclass
class TreePeak:
    """The largest summed PSS seen, with the RSS sum and the per-kind PSS at that moment."""

    pss: int = 0
    rss: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    samples: int = 0

    def describe(self) -> str:
        kinds = " + ".join(f"{self.by_kind[k] / MIB:.0f} {k}" for k in sorted(self.by_kind))
        return f"{self.pss / MIB:,.0f} ({self.rss / MIB:,.0f})" + (f" = {kinds}" if kinds else "")


def classify(proc: psutil.Process, root_pid: int) -> str:
    """``dbt`` (executor workers, the dbt CLI), ``flow`` (the measuring process), ``server``."""
    try:
        cmdline = " ".join(proc.cmdline())
    except psutil.Error:
        return "other"
    if "dbt_exec_core" in cmdline or "/dbt " in cmdline or cmdline.endswith("/dbt"):
        return "dbt"
    if proc.pid == root_pid:
        return "flow"
    if "uvicorn" in cmdline or "prefect" in cmdline:
        return "server"
    return "other"


def tree_memory(root: psutil.Process, include_root: bool = True) -> tuple[int, int, dict[str, int]]:
    """Summed PSS and RSS of ``root``'s tree now, and PSS per kind of process."""
    procs = root.children(recursive=True)
    if include_root:
        procs.append(root)
    pss = rss = 0
    by_kind: dict[str, int] = {}
    for proc in procs:
        try:
            info = proc.memory_full_info()
        except psutil.Error:  # it ended between listing and reading
            continue
        kind = classify(proc, root.pid)
        pss += info.pss
        rss += info.rss
        by_kind[kind] = by_kind.get(kind, 0) + info.pss
    return pss, rss, by_kind


class TreeSampler:
    """Samples a process tree's memory every ``interval`` seconds while in the ``with`` block.

    Example:
        >>> with TreeSampler(psutil.Process()) as sampler:  # doctest: +SKIP
        ...     do_work()
        >>> print(sampler.peak.describe())  # doctest: +SKIP
    """

    def __init__(
        self,
        root: psutil.Process,
        include_root: bool = True,
        interval: float = 0.25,
        measure: Callable[..., tuple[int, int, dict[str, int]]] = tree_memory,
    ) -> None:
        self.root, self.include_root, self.interval = root, include_root, interval
        self.peak = TreePeak()
        self._measure = measure
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-memory", daemon=True)

    def __enter__(self) -> TreeSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        try:
            pss, rss, by_kind = self._measure(self.root, self.include_root)
        except psutil.Error:
            return
        self.peak.samples += 1
        if pss > self.peak.pss:
            self.peak.pss, self.peak.rss, self.peak.by_kind = pss, rss, by_kind
