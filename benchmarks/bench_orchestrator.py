"""Benchmark prefect-dbt-orchestrator against plain ``dbt build`` (issue 6, "Speed").

Usage::

    uv run python benchmarks/bench_orchestrator.py [--models 200] [--adapters duckdb,postgres]
        [--repeat 1] [--concurrency 4] [--profile] [--keep DIR]

Generates one synthetic project (``benchmarks/generate_project.py``) and, for each adapter, times
side by side, each from an empty DuckDB file or PostgreSQL schema:

* **plain**: ``dbt build --threads 4 --target <t>``, the venv's ``dbt`` in a subprocess, after a
  ``dbt parse`` with the same environment (so its partial parsing is warm);
* **per_wave**: ``PrefectDbtOrchestrator(execution_mode="per_wave").run_build()``;
* **per_node**: the same with ``execution_mode="per_node", concurrency=4``;
* **cached rerun**: ``per_node`` with a ``CacheConfig``: one run to fill the cache (reported,
  not compared), then the timed rerun with nothing changed.

Every orchestrator run happens inside an already running Prefect flow, against a Prefect server
started before any timing (``prefect_test_harness``). The orchestrator and its executor are
constructed, and one warm-up ``plan()`` resolves the manifest (the executor's ``dbt parse`` runs
there, in a worker), before the clock starts; only the ``run_build()`` call is timed. Plain dbt
is timed as a user runs it: interpreter start, imports, partial-parse load and the build.

Next to wall time the script reports CPU seconds (the orchestrating process; dbt: the plain
``dbt`` process or the executor's worker processes; the Prefect server process) and the batches
the executor sent to its workers (how many of them joined a streaming session). ``--profile``
samples every thread of the orchestrating process during the timed runs
(``sys._current_frames``, every 5 ms; py-spy is not installed and cProfile sees one thread only),
prints where the time goes, and probes the executor's cost per request without Prefect.

PostgreSQL runs on a throwaway server (``initdb``/``pg_ctl``; as root through ``runuser -u
postgres``). dbt's anonymous usage statistics are switched off for every run: there is no
internet here, and a blocked tracking call would only slow plain ``dbt build`` down.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from _postgres import temporary_postgres

HERE = Path(__file__).resolve().parent
DBT = Path(sys.executable).parent / "dbt"
MODES = ("plain", "per_wave", "per_node", "cached_rerun", "cached_rerun_all")
TARGETS = {
    "plain": None,
    "per_wave": 1.2,
    "per_node": 1.3,
    "cached_rerun": 0.3,
    "cached_rerun_all": 0.3,
}


@dataclass
class Measurement:
    wall: float
    cpu_self: float = 0.0  # the orchestrating process (plain: the dbt process)
    cpu_dbt: float = 0.0  # the executor's zygote and workers
    cpu_server: float = 0.0  # the Prefect server process
    statuses: dict[str, int] = field(default_factory=dict)
    invocations: int = 0
    session_batches: int = 0
    notes: list[str] = field(default_factory=list)


# -- environment and databases -----------------------------------------------------------------


@contextlib.contextmanager
def patched_environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def env_for(adapter: str, run: str, root: Path, base: dict[str, str]) -> dict[str, str]:
    """The environment of one run: its own, empty, DuckDB file or PostgreSQL schema."""
    env = dict(base)
    if adapter == "duckdb":
        path = root / "db" / f"{run}.duckdb"
        path.parent.mkdir(exist_ok=True)
        for stale in path.parent.glob(f"{run}.duckdb*"):
            stale.unlink()
        env["BENCH_DUCKDB_PATH"] = str(path)
    else:
        env["BENCH_PG_SCHEMA"] = run
    return env


# -- CPU accounting ------------------------------------------------------------------------------


def _cpu(proc: psutil.Process) -> float:
    try:
        times = proc.cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system


def cpu_snapshot() -> dict[str, float]:
    """CPU seconds so far: this process, the executor's processes, everything else we started."""
    me = psutil.Process()
    out = {"self": _cpu(me), "dbt": 0.0, "server": 0.0}
    for child in me.children(recursive=True):
        try:
            cmdline = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "bench-memory-sampler" in cmdline:  # _memory's sampler measures, it is not measured
            continue
        kind = "dbt" if "dbt_exec_core" in cmdline else "server"
        out[kind] += _cpu(child)
    return out


class InvocationLog(logging.Handler):
    """Counts what the executor sent to its workers (its DEBUG log lines): batches, and those
    of them that went into a streaming session."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0
        self.sessions = 0

    def emit(self, record: logging.LogRecord) -> None:
        if not isinstance(record.msg, str):
            return
        if record.msg.startswith("invocation %d on worker"):
            self.count += 1
            self.sessions += "session" in str(record.args[-1]) if record.args else 0


@contextlib.contextmanager
def invocation_log() -> Iterator[InvocationLog]:
    logger = logging.getLogger("dbt_exec_core")
    handler = InvocationLog()
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # keep the executor's debug lines off the console
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


# -- sampling profiler ---------------------------------------------------------------------------


class Sampler:
    """A poor man's py-spy: samples every thread's Python stack in this process.

    Samples whose innermost frame is a blocking call (a lock, condition or socket wait, a
    select, a sleep) count as *waiting*; the report shows, per thread group, how many samples
    were *busy* and which functions were on the stack in them (inclusive) or innermost (self):
    that is where this process spends its CPU, and its share of the GIL.
    """

    BLOCKING = frozenset(
        {"wait", "_recv", "select", "sleep", "poll", "_wait_for_tstate_lock", "acquire", "recv"}
    )

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.samples: collections.Counter[str] = collections.Counter()
        self.busy: collections.Counter[str] = collections.Counter()
        self.inclusive: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )
        self.leaf: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self._main = threading.get_ident()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _group(self, ident: int, names: dict[int, str]) -> str:
        if ident == self._main:
            return "main (run_build)"
        name = names.get(ident, "?")
        return name.rstrip("0123456789_-").rstrip("_-") or name

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(self.interval):
            names = {t.ident: t.name for t in threading.enumerate() if t.ident is not None}
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                group = self._group(ident, names)
                self.samples[group] += 1
                if frame.f_code.co_name in self.BLOCKING:
                    continue
                self.busy[group] += 1
                self.leaf[group][_where(frame)] += 1
                seen: set[str] = set()
                while frame is not None:
                    where = _where(frame)
                    if where not in seen:
                        self.inclusive[group][where] += 1
                        seen.add(where)
                    frame = frame.f_back

    def report(self, title: str, top: int = 20) -> str:
        seconds = max(self.samples.values(), default=0) * self.interval
        lines = [
            f"--- profile: {title} (about {seconds:.0f} s, a sample every "
            f"{self.interval * 1000:.0f} ms per thread) ---"
        ]
        for group, busy in self.busy.most_common():
            if busy < 20:
                continue
            total = self.samples[group]
            lines.append(f"[{group}] busy in {busy} of {total} samples (% of busy samples)")
            lines.append("  inclusive   self  function")
            for where, count in self.inclusive[group].most_common(top):
                own = self.leaf[group].get(where, 0)
                lines.append(f"  {count / busy:8.1%} {own / busy:6.1%}  {where}")
        return "\n".join(lines)


def _where(frame: Any) -> str:
    return f"{_short(frame.f_code.co_filename)}:{frame.f_code.co_name}"


def _short(filename: str) -> str:
    match = re.search(r".*(?:site-packages|/src|/lib/python3\.\d+)/(.*)$", filename)
    return match.group(1) if match else filename


# -- the runs ------------------------------------------------------------------------------------


def run_plain(project: Path, adapter: str, env: dict[str, str]) -> Measurement:
    dbt_args = ["--project-dir", str(project), "--profiles-dir", str(project), "--target", adapter]
    subprocess.run([str(DBT), "parse", *dbt_args], env=env, check=True, capture_output=True)
    if adapter == "duckdb":  # parsing may have created the file
        for stale in Path(env["BENCH_DUCKDB_PATH"]).parent.glob(
            Path(env["BENCH_DUCKDB_PATH"]).name + "*"
        ):
            stale.unlink()
    before = os.times()
    started = time.perf_counter()
    proc = subprocess.run(
        [str(DBT), "build", "--threads", "4", *dbt_args], env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    after = os.times()
    if proc.returncode != 0:
        raise RuntimeError(f"dbt build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    notes = [line.split("Done. ")[-1] for line in proc.stdout.splitlines() if "Done. PASS=" in line]
    # dbt's own clock for the build: the rest of the wall time is start-up (imports, project
    # and partial-parse load) and shutdown.
    finished = re.search(r"Finished running .* \(([0-9.]+)s\)", proc.stdout)
    if finished:
        notes.append(f"dbt's own run time {float(finished.group(1)):.1f}s")
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return Measurement(wall=wall, cpu_self=cpu, notes=notes)


def _statuses(results: Any) -> dict[str, int]:
    return dict(collections.Counter(status_of(r) for r in results.values()))


def status_of(result: Any) -> str:
    """A node result's status, whether results are dicts or typed (attribute, maybe an enum)."""
    status = result["status"] if isinstance(result, dict) else result.status
    return str(getattr(status, "value", status))


def run_orchestrated(
    project: Path,
    adapter: str,
    env: dict[str, str],
    mode: str,
    concurrency: int,
    cache_dir: Path | None,
    cache_tests: bool,
    profile: Callable[[str], contextlib.AbstractContextManager[Any]],
) -> tuple[Measurement, Measurement | None]:
    """Time ``run_build`` inside a running flow; for a cache, a filling run first."""
    from prefect import flow
    from prefect_dbt_orchestrator import (
        CacheConfig,
        PrefectDbtOrchestrator,
        PrefectDbtSettings,
    )

    cache = None
    if cache_dir is not None:
        shutil.rmtree(cache_dir, ignore_errors=True)
        # The guide's default never caches tests (nor snapshots, unit tests); "all" caches
        # every data test and snapshot too, so a rerun with nothing changed runs no dbt.
        excluded = {"exclude_resource_types": frozenset()} if cache_tests else {}
        cache = CacheConfig(
            result_storage=cache_dir / "results", key_storage=cache_dir / "keys", **excluded
        )
    with patched_environ(env):
        orch = PrefectDbtOrchestrator(
            settings=PrefectDbtSettings(project_dir=project, profiles_dir=project),
            execution_mode=mode,
            concurrency=concurrency if mode == "per_node" else None,
            cache=cache,
            threads=4,
        )

        @flow(name=f"bench-{adapter}-{mode}", log_prints=False)
        def timed_build(label: str) -> Measurement:
            plan = orch.plan(target=adapter)  # warm-up: the manifest is resolved here
            predicted = collections.Counter((plan.cache_predictions or {}).values())
            with invocation_log() as invocations, profile(f"{adapter} {label}"):
                cpu_before = cpu_snapshot()
                started = time.perf_counter()
                results = orch.run_build(target=adapter)
                wall = time.perf_counter() - started
                cpu_after = cpu_snapshot()
            measured = Measurement(
                wall=wall,
                cpu_self=cpu_after["self"] - cpu_before["self"],
                cpu_dbt=cpu_after["dbt"] - cpu_before["dbt"],
                cpu_server=cpu_after["server"] - cpu_before["server"],
                statuses=_statuses(results),
                invocations=invocations.count,
                session_batches=invocations.sessions,
            )
            if predicted:
                measured.notes.append(
                    "plan() predicted " + ", ".join(f"{n} {k}" for k, n in predicted.items())
                )
            return measured

        try:
            if cache is None:
                return timed_build(mode), None
            filling = timed_build("cache fill")
            return timed_build("cached rerun"), filling
        finally:
            orch.executor.close()


def probe_invocations(project: Path, adapter: str, env: dict[str, str], repeats: int = 8) -> str:
    """The executor's cost per request, without Prefect, on an already built database.

    Times sequential one-node requests (a ``not_null`` test, a view model) and four independent
    tests requested at once from four threads (the executor coalesces them into one dbt
    invocation), next to dbt's own ``execution_time`` for the nodes.
    """
    from concurrent.futures import ThreadPoolExecutor

    from dbt_exec_core import DbtCoreExecutor
    from dbt_graph import Command, ExecutionRequest, load_manifest
    from prefect_dbt_orchestrator import PrefectDbtSettings

    with patched_environ(env):
        settings = PrefectDbtSettings(project_dir=project, profiles_dir=project)
        executor = DbtCoreExecutor(settings, threads=4, target=adapter)
        try:
            manifest = load_manifest(executor.resolve_manifest())
            nodes = manifest.nodes
            tests = sorted(u for u, n in nodes.items() if n.is_test and ".not_null_model_7_" in u)
            views = sorted(u for u in nodes if u.startswith("model.bench.model_3_"))

            def run(command: Any, uid: str) -> tuple[float, float]:
                started = time.perf_counter()
                result = executor.execute(ExecutionRequest(command=command, nodes=(nodes[uid],)))
                wall = time.perf_counter() - started
                node = result.results[uid]
                if node.is_failure:
                    raise RuntimeError(f"probe node {uid} failed: {node.message}")
                return wall, node.execution_time or 0.0

            lines = [f"--- executor probe ({adapter}, {repeats} repeats, medians) ---"]
            for label, command, uid in (
                ("1 test", Command.TEST, tests[0]),
                ("1 view model", Command.RUN, views[0]),
            ):
                run(command, uid)  # warm: worker forked, manifest loaded
                timed = [run(command, uid) for _ in range(repeats)]
                wall = statistics.median(t[0] for t in timed)
                own = statistics.median(t[1] for t in timed)
                lines.append(
                    f"{label:28} request {wall:6.3f}s  dbt execution_time {own:6.3f}s  "
                    f"fixed cost {wall - own:6.3f}s"
                )
            batch = tests[:4]
            with ThreadPoolExecutor(4) as pool, invocation_log() as log:
                walls = []
                for _ in range(repeats):
                    started = time.perf_counter()
                    list(pool.map(lambda u: run(Command.TEST, u), batch))
                    walls.append(time.perf_counter() - started)
            lines.append(
                f"{'4 tests at once':28} all done {statistics.median(walls):6.3f}s  "
                f"in {log.count / repeats:.1f} executor batch(es) per round"
            )
            return "\n".join(lines)
        finally:
            executor.close()


def _timed_run(orch: Any, adapter: str) -> tuple[float, dict[str, float], int]:
    orch.plan(target=adapter)
    before = cpu_snapshot()
    started = time.perf_counter()
    results = orch.run_build(target=adapter)
    wall = time.perf_counter() - started
    after = cpu_snapshot()
    return wall, {k: after[k] - before[k] for k in after}, len(results)


def prefect_floor(project: Path, adapter: str, env: dict[str, str], concurrency: int) -> str:
    """PER_NODE over the same plan with dbt taken out (``dbt_graph.testing.FakeExecutor``).

    What is left is the orchestrator and Prefect: one task run per node, its state changes
    and events, assets and log shipping. Run with the defaults, without assets, and without
    assets or shipping logs to the API, to see what each costs.
    """
    from dbt_exec_core import DbtCoreExecutor
    from dbt_graph import load_manifest
    from dbt_graph.testing import FakeExecutor
    from prefect import flow
    from prefect.settings import PREFECT_LOGGING_TO_API_ENABLED, temporary_settings
    from prefect_dbt_orchestrator import PrefectDbtOrchestrator, PrefectDbtSettings

    settings = PrefectDbtSettings(project_dir=project, profiles_dir=project)
    with patched_environ(env):
        real = DbtCoreExecutor(settings, target=adapter)
        try:
            manifest = load_manifest(real.resolve_manifest())
        finally:
            real.close()
    lines = [f"--- PER_NODE without dbt (FakeExecutor, concurrency {concurrency}) ---"]
    for label, no_assets, api_logs in (
        ("defaults", False, True),
        ("disable_assets=True", True, True),
        ("disable_assets=True, no logs to the API", True, False),
    ):
        orch = PrefectDbtOrchestrator(
            settings=settings,
            executor=FakeExecutor(manifest),
            execution_mode="per_node",
            concurrency=concurrency,
            disable_assets=no_assets,
        )

        with temporary_settings({PREFECT_LOGGING_TO_API_ENABLED: api_logs}):
            wall, cpu, nodes = flow(name=f"bench-floor-{adapter}")(_timed_run)(orch, adapter)
        lines.append(
            f"{label:42} {wall:6.1f}s wall for {nodes} nodes ({wall / nodes * 1000:.0f} ms/node); "
            f"CPU s: orchestrator {cpu['self']:.1f}, Prefect server {cpu['server']:.1f}"
        )
    return "\n".join(lines)


# -- driver --------------------------------------------------------------------------------------


def bench_adapter(
    adapter: str, args: argparse.Namespace, root: Path, project: Path, base: dict[str, str]
) -> dict[str, list[Measurement]]:
    measured: dict[str, list[Measurement]] = {
        m: [] for m in (*MODES, "cache_fill", "cache_fill_all")
    }

    def profile(title: str) -> contextlib.AbstractContextManager[Any]:
        if not args.profile:
            return contextlib.nullcontext()
        sampler = Sampler()

        @contextlib.contextmanager
        def sampled() -> Iterator[None]:
            with sampler:
                yield
            print(sampler.report(title), flush=True)

        return sampled()

    modes = ["plain", *(m for m in args.modes.split(",") if m != "plain")]
    for rep in range(args.repeat):
        suffix = f"_{rep}" if args.repeat > 1 else ""
        for mode in modes:
            print(f"== {adapter} {mode} (run {rep + 1}/{args.repeat})", flush=True)
            env = env_for(adapter, f"bench_{mode}{suffix}", root, base)
            if mode == "plain":
                measured[mode].append(run_plain(project, adapter, env))
                continue
            cached = mode.startswith("cached_rerun")
            everything = mode == "cached_rerun_all"
            timed, filling = run_orchestrated(
                project,
                adapter,
                env,
                "per_node" if cached else mode,
                args.concurrency,
                root / f"cache-{adapter}-{mode}" if cached else None,
                everything,
                profile,
            )
            measured[mode].append(timed)
            if filling is not None:
                measured["cache_fill_all" if everything else "cache_fill"].append(filling)
    if args.profile:
        built = "bench_per_node" + ("_0" if args.repeat > 1 else "")
        env = dict(base)
        if adapter == "duckdb":
            env["BENCH_DUCKDB_PATH"] = str(root / "db" / f"{built}.duckdb")
        else:
            env["BENCH_PG_SCHEMA"] = built
        if "per_node" in modes:
            print(probe_invocations(project, adapter, env), flush=True)
        print(prefect_floor(project, adapter, env, args.concurrency), flush=True)
    return measured


def print_table(adapter: str, measured: dict[str, list[Measurement]]) -> list[str]:
    plain = statistics.median(m.wall for m in measured["plain"])
    rows = [
        "| adapter | run | wall s | x plain | target | CPU s: orchestrator / dbt / server "
        "| executor batches (in sessions) | statuses |",
        "| --- | --- | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for mode in (
        "plain",
        "per_wave",
        "per_node",
        "cache_fill",
        "cached_rerun",
        "cache_fill_all",
        "cached_rerun_all",
    ):
        runs = measured[mode]
        if not runs:
            continue
        wall = statistics.median(m.wall for m in runs)
        last = runs[-1]
        target = TARGETS.get(mode)
        verdict = ""
        if target is not None:
            verdict = f"<= {target} {'ok' if wall / plain <= target else 'MISSED'}"
        walls = "/".join(f"{m.wall:.1f}" for m in runs)
        cpu = (
            f"{statistics.median(m.cpu_self for m in runs):.1f} (dbt process)"
            if mode == "plain"
            else " / ".join(
                f"{statistics.median(getattr(m, a) for m in runs):.1f}"
                for a in ("cpu_self", "cpu_dbt", "cpu_server")
            )
        )
        invocations = (
            f"{last.invocations} ({last.session_batches})" if mode != "plain" else "1 invocation"
        )
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(last.statuses.items()))
        statuses = "; ".join(filter(None, [statuses, *last.notes]))
        rows.append(
            f"| {adapter} | {mode} | {walls} | {wall / plain:.2f} | {verdict} | {cpu} "
            f"| {invocations} | {statuses} |"
        )
    print("\n".join(rows), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--adapters", default="duckdb,postgres")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--modes",
        default=",".join(MODES),
        help=f"which of {','.join(MODES)} to time (plain always runs: it is the baseline)",
    )
    parser.add_argument(
        "--server",
        choices=("default", "tuned"),
        default="default",
        help="the Prefect server's settings: Prefect's defaults, or those the orchestrator "
        "gives a server it starts (task run recorder in batches)",
    )
    parser.add_argument("--profile", action="store_true", help="sample where the time goes")
    parser.add_argument("--keep", type=Path, default=None, help="work in DIR and keep it")
    args = parser.parse_args()
    unknown = set(args.modes.split(",")) - set(MODES)
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(sorted(unknown))}; choose from {MODES}")

    root = (args.keep or Path(tempfile.mkdtemp(prefix="bench-orch-"))).absolute()
    project = root / "project"
    subprocess.run(
        [
            sys.executable,
            str(HERE / "generate_project.py"),
            str(project),
            "--models",
            str(args.models),
        ],
        check=True,
    )
    os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    print(
        f"{datetime.date.today()}: project {project} ({args.models} models), concurrency "
        f"{args.concurrency}, {args.server} Prefect server, {os.cpu_count()} CPUs, load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}",
        flush=True,
    )

    from prefect.testing.utilities import prefect_test_harness

    tables: list[str] = []
    from prefect.settings import temporary_settings
    from prefect_dbt_orchestrator._server import SERVER_DEFAULTS

    # "tuned": the settings the orchestrator gives a server it starts itself (batched task run
    # recorder); "default": Prefect's own defaults, as a server someone else started may have.
    server_settings = SERVER_DEFAULTS if args.server == "tuned" else {}
    with (
        temporary_settings(set_defaults=server_settings),
        prefect_test_harness(server_startup_timeout=180),
    ):
        for adapter in args.adapters.split(","):
            try:
                if adapter == "postgres":
                    with temporary_postgres() as pg_env:
                        measured = bench_adapter(
                            adapter, args, root, project, {**os.environ, **pg_env}
                        )
                else:
                    measured = bench_adapter(adapter, args, root, project, dict(os.environ))
            except Exception as exc:  # report and go on with the next adapter
                print(f"!! {adapter} failed: {type(exc).__name__}: {exc}", flush=True)
                continue
            tables.append("\n".join(print_table(adapter, measured)))
    print(f"\nload average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("\n\n".join(tables))
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
