"""Peak memory of a whole process tree, sampled from /proc by a process of its own.

RSS counts a page once per process that maps it, so summing it over forked workers (the dbt
executor forks its workers from a zygote that has already imported dbt) counts their shared
pages several times. PSS divides each shared page among the processes that share it, so the
sum of PSS over a tree is the memory the tree really holds. Both sums are reported; the
comparisons use PSS.

Reading a process's PSS (``/proc/PID/smaps_rollup``) makes the kernel walk its page tables:
about 2 ms of CPU per 100 MiB resident. Four times a second over a 1.5 GiB tree, inside the
measured process, that was a tenth of a CPU charged to the flow's process, growing with the
project's size (and competing with the orchestrator for the GIL). So the sampler runs in a
process of its own (``python _memory.py``, left out of the tree it measures and of
``bench_orchestrator.cpu_snapshot``), reads the cheap RSS (``/proc/PID/statm``) every
``interval`` and the PSS only when the RSS sum has grown by 0.5 % since the last PSS reading,
or at least every 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

MIB = 1024 * 1024
#: A marker in the sampler's command line, so measurements leave it out.
SAMPLER = "bench-memory-sampler"
_GROWTH = 1.005
_PSS_AT_LEAST_EVERY = 10.0


@dataclass
class TreePeak:
    """The largest summed PSS seen, with the RSS sum and the per-kind PSS at that moment."""

    pss: int = 0
    rss: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    samples: int = 0
    pss_readings: int = 0

    def describe(self) -> str:
        kinds = " + ".join(f"{self.by_kind[k] / MIB:.0f} {k}" for k in sorted(self.by_kind))
        return f"{self.pss / MIB:,.0f} ({self.rss / MIB:,.0f})" + (f" = {kinds}" if kinds else "")


def is_sampler(proc: psutil.Process) -> bool:
    """Whether ``proc`` is a sampler (never part of what is measured)."""
    try:
        return SAMPLER in " ".join(proc.cmdline())
    except psutil.Error:
        return False


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


def _tree(root: psutil.Process, include_root: bool) -> list[psutil.Process]:
    procs = [p for p in root.children(recursive=True) if not is_sampler(p)]
    return [*procs, root] if include_root else procs


def tree_memory(root: psutil.Process, include_root: bool = True) -> tuple[int, int, dict[str, int]]:
    """Summed PSS and RSS of ``root``'s tree now, and PSS per kind of process."""
    pss = rss = 0
    by_kind: dict[str, int] = {}
    for proc in _tree(root, include_root):
        try:
            info = proc.memory_full_info()
        except psutil.Error:  # it ended between listing and reading
            continue
        kind = classify(proc, root.pid)
        pss += info.pss
        rss += info.rss
        by_kind[kind] = by_kind.get(kind, 0) + info.pss
    return pss, rss, by_kind


def tree_rss(root: psutil.Process, include_root: bool = True) -> int:
    """Summed RSS of ``root``'s tree now (cheap: no page-table walk)."""
    total = 0
    for proc in _tree(root, include_root):
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            continue
    return total


def sample(root_pid: int, include_root: bool, interval: float, out: Path) -> None:
    """The sampler process's loop: until SIGTERM, then write the peak to ``out``."""
    stop = False

    def finish(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, finish)
    root = psutil.Process(root_pid)
    peak = TreePeak()
    measured_rss, measured_at = 0, 0.0
    while True:
        last = stop
        try:
            rss = tree_rss(root, include_root)
            peak.samples += 1
            now = time.monotonic()
            if last or rss > measured_rss * _GROWTH or now - measured_at > _PSS_AT_LEAST_EVERY:
                pss, full_rss, by_kind = tree_memory(root, include_root)
                peak.pss_readings += 1
                measured_rss, measured_at = full_rss, now
                if pss > peak.pss:
                    peak.pss, peak.rss, peak.by_kind = pss, full_rss, by_kind
        except psutil.Error:
            break
        if last:
            break
        time.sleep(interval)
    out.write_text(json.dumps(asdict(peak)))


class TreeSampler:
    """Samples a process tree's memory, from another process, while in the ``with`` block.

    Example:
        >>> with TreeSampler(psutil.Process()) as sampler:  # doctest: +SKIP
        ...     do_work()
        >>> print(sampler.peak.describe())  # doctest: +SKIP
    """

    def __init__(
        self, root: psutil.Process, include_root: bool = True, interval: float = 0.25
    ) -> None:
        self.root, self.include_root, self.interval = root, include_root, interval
        self.peak = TreePeak()
        fd, name = tempfile.mkstemp(prefix="bench-memory-", suffix=".json")
        os.close(fd)
        self._out = Path(name)
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> TreeSampler:
        self._proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                SAMPLER,
                str(self.root.pid),
                str(int(self.include_root)),
                str(self.interval),
                str(self._out),
            ]
        )
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGTERM)
        self._proc.wait()
        try:
            data = json.loads(self._out.read_text())
        except ValueError:  # it failed before writing: no figure rather than a wrong one
            data = {}
        finally:
            self._out.unlink(missing_ok=True)
        self.peak = TreePeak(**data)


def main() -> None:
    parser = argparse.ArgumentParser(description="Sample a process tree's memory.")
    parser.add_argument("marker", choices=[SAMPLER])
    parser.add_argument("pid", type=int)
    parser.add_argument("include_root", type=int)
    parser.add_argument("interval", type=float)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    sample(args.pid, bool(args.include_root), args.interval, args.out)


if __name__ == "__main__":
    main()
