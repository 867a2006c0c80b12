"""``kill -9`` of a dbt worker mid-build: the node fails naming the worker, the rest still runs."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from dbt_exec_core import DbtCoreExecutor
from dbt_graph import NodeStatus, load_manifest
from exec_core.projects import by_name, eager_per_node, make_project, run_one, settings_for
from exec_core.worker_loss import Killer, holders, stuck_model

pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    project = make_project(tmp_path, extra=False)
    (project / "models" / "stuck.sql").write_text(stuck_model(tmp_path / "started.csv"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DBT_DUCKDB_PATH", str(project / "shop.duckdb"))
        yield project


def test_a_killed_worker_fails_its_node_naming_it_and_is_replaced(project: Path, tmp_path):
    executor = DbtCoreExecutor(settings_for(project))
    with executor, executor.run_scope():
        manifest = load_manifest(executor.resolve_manifest())
        killer = Killer(tmp_path / "started.csv", project / "shop.duckdb")
        stuck = by_name(manifest, "stuck")
        with ThreadPoolExecutor(1) as pool:
            lost = pool.submit(run_one, executor, stuck).result(timeout=300)
        pid = killer.join()

        node = lost.results[stuck.unique_id]
        assert node.status is NodeStatus.ERROR
        assert f"(pid {pid}) exited unexpectedly" in (node.message or "")
        assert node.error is not None and node.error.type == "WorkerError"
        assert lost.error is not None and lost.error.type == "WorkerError"

        # The rest of the project builds on a new worker.
        rest = [
            n
            for n in manifest.nodes.values()
            if (n.is_executable or n.is_test) and n.unique_id != stuck.unique_id
        ]
        results = eager_per_node(executor, manifest, rest, concurrency=4)
        failing = {
            uid: r.results[uid].message for uid, r in results.items() if r.results[uid].is_failure
        }
        assert set(results) == {n.unique_id for n in rest} and not failing, failing
        assert holders(project / "shop.duckdb") not in ([], [pid])  # another worker has it
