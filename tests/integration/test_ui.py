"""The Prefect UI, seen in headless Chromium after a PER_NODE build (issue 16, item 5).

A real ``prefect server start`` serves the UI (the test harness's server runs with the UI
switched off); the shop project is built on DuckDB against it, then Chromium opens three views
and the test asserts what each shows:

* the flow run's graph: one task per node, named ``"<resource type> <name>"``, with the plan's
  edges (read from the graph data the page fetched, then drawn on the page's canvas);
* the ``dbt-orchestrator-summary`` artifact, rendered from markdown;
* the asset materializations in the event feed (Prefect's open-source UI has no asset page of
  its own): every model, seed and snapshot with its upstream assets.

Set ``UI_SCREENSHOTS_DIR`` (e.g. ``docs/images``) to keep one screenshot per view there.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import copy_shop_project

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# What the lead measured to work here: no sandbox as root, no GPU, nothing that calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="Chromium is not installed (apt-get install -y chromium; .ci/run does it)",
    ),
]
sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ui_server() -> Iterator[str]:
    """``prefect server start`` with the UI, on a free port and a throwaway database."""
    home = Path(tempfile.mkdtemp(prefix="prefect-ui-"))
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api,
        "PREFECT_UI_API_URL": api,
        "PREFECT_UI_ENABLED": "true",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home}/prefect.db",
    }
    log = (home / "server.log").open("w")
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
    server = subprocess.Popen(
        [*command, "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_healthy(api, server, home / "server.log")
        yield api
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        shutil.rmtree(home, ignore_errors=True)


def _wait_until_healthy(api: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 300  # a first start runs the database migrations
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"prefect server start exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{api}/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"prefect server start did not answer in 300 s:\n{log.read_text()[-3000:]}")


_BUILD = """
import sys
from pathlib import Path
from prefect import flow
from prefect_dbt_orchestrator import PrefectDbtOrchestrator, PrefectDbtSettings

project = Path(sys.argv[1])
orch = PrefectDbtOrchestrator(
    settings=PrefectDbtSettings(project_dir=project, profiles_dir=project),
    execution_mode="per_node",
    concurrency=4,
)
try:
    state = flow(name="ui-shop-build")(orch.run_build)(return_state=True)
    manifest = orch.executor.resolve_manifest()
finally:
    orch.executor.close()
if not state.is_completed():
    sys.exit(f"the build failed: {state.message}")
print(state.state_details.flow_run_id, manifest)
"""


@dataclass(frozen=True)
class Build:
    flow_run_id: str
    task_names: dict[str, str]  # unique_id -> the task's name
    edges: frozenset[tuple[str, str]]  # (parent task name, child task name), from the plan
    assets: dict[str, frozenset[str]]  # asset key -> upstream asset keys


@pytest.fixture(scope="module")
def build(ui_server: str, tmp_path_factory: pytest.TempPathFactory) -> Build:
    """A PER_NODE build of the shop project on DuckDB, reported to the UI's server."""
    from dbt_graph import build_plan, load_manifest, select

    project = copy_shop_project(tmp_path_factory.mktemp("ui"))
    # In a process of its own: Prefect's event and log workers are per-process singletons, and
    # in a test session they may already be bound to another test's server.
    env = {
        **os.environ,
        "PREFECT_API_URL": ui_server,
        "DBT_DUCKDB_PATH": str(project / "shop.duckdb"),
    }
    proc = subprocess.run(
        [sys.executable, "-c", _BUILD, str(project)],
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    flow_run_id, manifest_path = proc.stdout.strip().splitlines()[-1].split()
    manifest = load_manifest(manifest_path)

    plan = build_plan(manifest, select(manifest))  # the default selector, as run_build
    names = {
        uid: f"{node.resource_type.value} {node.display_name}" for uid, node in plan.nodes.items()
    }
    edges = frozenset(
        (names[parent], names[uid]) for uid in plan.nodes for parent in plan.dependencies[uid]
    )
    return Build(
        flow_run_id=flow_run_id,
        task_names=names,
        edges=edges,
        assets=_expected_assets(project),
    )


def _expected_assets(project: Path) -> dict[str, frozenset[str]]:
    """Asset keys of the shop's tables, views and seeds, with those they read (by hand)."""
    key = "duckdb://shop/main/{}".format
    reads = {
        "raw_customers": (),
        "raw_orders": (),
        "raw_payments": (),
        "util_days": (),
        "stg_customers": ("raw_customers",),
        "stg_orders": ("raw_orders",),
        "stg_payments": ("raw_payments",),
        "orders": ("stg_orders", "stg_payments"),
        "order_events": ("stg_orders",),
        "customers_v1": ("stg_customers", "orders"),
        "customers_v2": ("stg_customers", "orders"),
        "customers_snapshot": ("stg_customers",),
        "orders_snapshot": ("stg_orders",),
    }
    return {key(name): frozenset(map(key, upstream)) for name, upstream in reads.items()}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, ui_server: str) -> Iterator[Any]:
    context = browser.new_context(
        base_url=ui_server.removesuffix("/api"), viewport={"width": 1400, "height": 900}
    )
    context.set_default_timeout(120_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def _keep(page: Any, name: str, tmp_path: Path) -> None:
    """A screenshot in the test's directory, and in ``UI_SCREENSHOTS_DIR`` when set."""
    page.screenshot(path=tmp_path / name)
    wanted = os.environ.get("UI_SCREENSHOTS_DIR")
    if wanted:
        Path(wanted).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / name, Path(wanted) / name)


def test_flow_run_graph_shows_one_task_per_node_with_its_edges(
    page: Any, build: Build, tmp_path: Path
) -> None:
    with page.expect_response(lambda r: r.url.endswith("/graph-v2")) as graph_response:
        page.goto(f"/runs/flow-run/{build.flow_run_id}", wait_until="networkidle")
    graph = graph_response.value.json()
    labels = {node_id: node["label"] for node_id, node in graph["nodes"]}
    assert sorted(labels.values()) == sorted(build.task_names.values())  # each node once
    shown_edges = {
        (labels[parent["id"]], label)
        for node_id, node in graph["nodes"]
        for label in [labels[node_id]]
        for parent in node["parents"]
    }
    assert shown_edges == build.edges
    assert f"{len(build.task_names)} Task runs" in page.locator("body").inner_text()

    # Lay the graph out by dependency, full screen, and check that it was drawn.
    page.get_by_role("button", name="Run Graph Options").click()
    page.get_by_text("Dependency grid").click()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Toggle fullscreen (f)").click()
    page.get_by_role("button", name="Recenter graph (c)").click()
    page.wait_for_timeout(1500)  # the canvas animates to its new layout
    canvas = page.locator("canvas").first
    assert canvas.bounding_box()["width"] > 1000
    assert _drawn_colours(page, canvas) > 2
    _keep(page, "ui-flow-run-graph.png", tmp_path)


def _drawn_colours(page: Any, canvas: Any) -> int:
    """How many colours the graph's canvas shows on screen (a blank canvas has one).

    The graph is drawn with WebGL, whose buffer cannot be read back once shown; so the
    element's screenshot is decoded by the page itself and its pixels counted there.
    """
    png = base64.b64encode(canvas.screenshot()).decode()
    return page.evaluate(
        """async (png) => {
            const img = new Image();
            img.src = "data:image/png;base64," + png;
            await img.decode();
            const c = document.createElement("canvas");
            c.width = img.width;
            c.height = img.height;
            const ctx = c.getContext("2d");
            ctx.drawImage(img, 0, 0);
            const data = ctx.getImageData(0, 0, c.width, c.height).data;
            const seen = new Set();
            for (let i = 0; i < data.length; i += 4) {
                seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
            }
            return seen.size;
        }""",
        png,
    )


def test_summary_artifact_renders(page: Any, build: Build, ui_server: str, tmp_path: Path) -> None:
    artifacts = httpx.post(
        f"{ui_server}/artifacts/filter",
        json={
            "artifacts": {"key": {"any_": ["dbt-orchestrator-summary"]}},
            "flow_runs": {"id": {"any_": [build.flow_run_id]}},
        },
    ).json()
    assert len(artifacts) == 1
    page.goto(f"/artifacts/artifact/{artifacts[0]['id']}", wait_until="networkidle")
    heading = page.get_by_role("heading", name="dbt build summary")
    heading.wait_for()
    # Rendered, not shown as markdown source: a heading and a table with the counts.
    header = page.locator("table").first.locator("th").all_inner_texts()
    assert [h.strip() for h in header] == ["Success", "Cached", "Warn", "Error", "Skipped", "Total"]
    first_row = page.locator("table").first.locator("tbody tr").first.locator("td")
    total = len(build.task_names)
    assert [c.strip() for c in first_row.all_inner_texts()] == [
        str(total),
        "0",
        "1",
        "0",
        "0",
        str(total),
    ]
    body = page.locator("body").inner_text()
    assert "## dbt build summary" not in body
    assert f"Successful ({total})" in body
    assert "accepted_values_stg_payments_method__card__bank_transfer" in body  # the warning
    _keep(page, "ui-summary-artifact.png", tmp_path)


def test_asset_materializations_list_the_models_with_their_lineage(
    page: Any, build: Build, tmp_path: Path
) -> None:
    page.goto("/events?events=prefect.asset.materialization.succeeded", wait_until="networkidle")
    page.get_by_text("Asset materialization succeeded").first.wait_for()
    shown = _materialization_cards(page.locator("body").inner_text())
    assert set(shown) == set(build.assets)
    for asset, upstream in build.assets.items():
        assert shown[asset] == upstream, asset
    _keep(page, "ui-asset-lineage.png", tmp_path)


def _materialization_cards(text: str) -> dict[str, frozenset[str]]:
    """Asset key -> upstream asset keys, as the event feed's cards print them."""
    cards: dict[str, frozenset[str]] = {}
    for card in text.split("Asset materialization succeeded\n")[1:]:
        lines = [line.strip() for line in card.splitlines()]
        resource = lines[lines.index("Resource") + 1]
        related = lines[lines.index("Related Resources") + 1 :]
        upstream = []
        for line in related:
            if not line.startswith("duckdb://"):
                break
            upstream.append(line)
        cards[resource] = frozenset(upstream)
    return cards
