"""Helpers for the dbt-exec-core tests: project copies, settings, an eager per-node scheduler."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from dbt_graph import Command, ExecutionRequest, ExecutionResult, Manifest, Node

#: The password the PostgreSQL tests give dbt (the test server trusts everyone), to check it
#: never appears in results, reprs or files.
PG_PASSWORD = "s3cret-Pa55word"
SHOP = Path(__file__).resolve().parents[1] / "fixtures" / "shop"

#: Nodes added to every copy: a model that fails, its child, a model that runs until stopped,
#: and a singular test that fails.
EXTRA_FILES = {
    "models/exec_core/broken.sql": "select no_such_column from {{ ref('raw_customers') }}\n",
    "models/exec_core/after_broken.sql": "select * from {{ ref('broken') }}\n",
    "models/exec_core/slow.sql": (
        "{{ config(materialized='table') }}\n"
        "{% if target.type == 'postgres' %}\n"
        "select 1 as slept from (select pg_sleep(300)) as s\n"
        "{% else %}\n"
        "select sum(a.range * b.range) as n from range(100000) a, range(100000) b\n"
        "{% endif %}\n"
    ),
    "tests/exec_core_always_fails.sql": "select 1 as failing_row\n",
}


@dataclass(frozen=True)
class Settings:
    """What the executor reads from the orchestrator's settings."""

    project_dir: Path
    profiles_dir: Path
    target_path: str = "target"


def make_project(dest: Path, *, extra: bool = True) -> Path:
    """Copy the shop project (without build output) to ``dest/shop``, plus :data:`EXTRA_FILES`."""
    project = dest / "shop"
    shutil.copytree(
        SHOP,
        project,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", "*.duckdb*"),
    )
    if extra:
        for name, text in EXTRA_FILES.items():
            path = project / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return project


def settings_for(project: Path) -> Settings:
    return Settings(project_dir=project, profiles_dir=project)


def by_name(manifest: Manifest, name: str) -> Node:
    """The node whose unique_id is ``name`` or ends with ``.name``."""
    if name in manifest.nodes:
        return manifest.nodes[name]
    found = [
        n
        for uid, n in manifest.nodes.items()
        if uid.endswith(f".{name}") and n.resource_type != "source"
    ]
    assert len(found) == 1, (name, [n.unique_id for n in found])
    return found[0]


def run_one(executor, node: Node, **kw) -> ExecutionResult:
    """Execute one node with the command that runs it alone."""
    request = ExecutionRequest(command=Command.for_node(node), nodes=(node,), **kw)
    return executor.execute(request)


def eager_per_node(
    executor,
    manifest: Manifest,
    nodes: Iterable[Node],
    *,
    concurrency: int = 4,
    on_result: Callable[[ExecutionResult], None] | None = None,
) -> dict[str, ExecutionResult]:
    """Run each node as its own request, ``concurrency`` at a time, submitting a node as soon
    as its parents (among ``nodes``) succeeded; descendants of failures are not submitted."""
    todo = {n.unique_id: n for n in nodes}
    parents = {uid: {p for p in _ancestors_in(manifest, uid, todo)} for uid in todo}
    done: dict[str, ExecutionResult] = {}
    failed: set[str] = set()
    lock = threading.Lock()
    with ThreadPoolExecutor(concurrency) as pool:
        running: dict[Future[ExecutionResult], str] = {}

        def submit_ready() -> None:
            for uid in list(todo):
                if parents[uid] & failed:
                    del todo[uid]
                    failed.add(uid)
                elif parents[uid] <= done.keys() - failed:
                    running[pool.submit(run_one, executor, todo.pop(uid))] = uid

        submit_ready()
        while running:
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                uid = running.pop(future)
                result = future.result()
                with lock:
                    done[uid] = result
                    if result.results[uid].is_failure:
                        failed.add(uid)
                if on_result:
                    on_result(result)
            submit_ready()
    return done


def _ancestors_in(manifest: Manifest, uid: str, wanted: dict[str, Node]) -> set[str]:
    """The nearest ancestors of ``uid`` among ``wanted`` (walking through other nodes)."""
    out: set[str] = set()
    stack = list(manifest.parent_map.get(uid, ()))
    seen: set[str] = set()
    while stack:
        parent = stack.pop()
        if parent in seen:
            continue
        seen.add(parent)
        if parent in wanted:
            out.add(parent)
        else:
            stack.extend(manifest.parent_map.get(parent, ()))
    return out


def run_pickled(payload: bytes, node: Node) -> str:
    """In another process: unpickle an executor, run one node, return its status."""
    import pickle

    executor = pickle.loads(payload)
    try:
        return run_one(executor, node).results[node.unique_id].status.value
    finally:
        executor.close()
