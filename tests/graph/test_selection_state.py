"""state:, result: and source_status: selection, and reading a --state directory."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from dbt_graph import (
    Manifest,
    SelectionError,
    SelectionState,
    StateError,
    parse_manifest,
    select,
)
from dbt_graph.testing import ManifestBuilder

Edit = Callable[[dict[str, Any]], None]


def previous_project() -> dict[str, Any]:
    data = (
        ManifestBuilder()
        .macro("inner", "{% macro inner() %}1{% endmacro %}")
        .macro(
            "outer", "{% macro outer() %}{{ inner() }}{% endmacro %}", depends_on=["macro.p.inner"]
        )
        .seed("raw")
        .source("app", "orders", warn_after=(1, "day"))
        .model("stg", depends_on=["raw"], macros=["macro.p.outer"])
        .model(
            "mart",
            depends_on=["stg"],
            materialized="table",
            config={"persist_docs": {"relation": True}},
        )
        .model("other", depends_on=["app.orders"])
        .test("not_null_stg", depends_on=["stg"])
        .test("assert_mart", depends_on=["mart"], test_name=None)
        .unit_test("test_mart", model="mart")
        .exposure("dash", depends_on=["mart"])
        .build_dict()
    )
    for section in ("nodes", "sources", "exposures"):
        for raw in data[section].values():
            raw["unrendered_config"] = {"materialized": raw["config"].get("materialized")}
    data["exposures"]["exposure.p.dash"].update(type="dashboard", owner={"name": "ops"})
    return data


def node(data: dict[str, Any], uid: str) -> dict[str, Any]:
    for section in ("nodes", "sources", "unit_tests", "exposures"):
        if uid in data[section]:
            return data[section][uid]
    raise KeyError(uid)


def setter(uid: str, **fields: Any) -> Edit:
    return lambda data: node(data, uid).update(fields)


def config_setter(uid: str, key: str, value: Any) -> Edit:
    return lambda data: node(data, uid)["unrendered_config"].__setitem__(key, value)


def add_model(data: dict[str, Any]) -> None:
    new = copy.deepcopy(node(data, "model.p.other"))
    new.update(unique_id="model.p.fresh", name="fresh", fqn=["p", "fresh"])
    data["nodes"]["model.p.fresh"] = new
    source = copy.deepcopy(node(data, "source.p.app.orders"))
    source.update(unique_id="source.p.app.items", name="items", fqn=["p", "app", "items"])
    data["sources"]["source.p.app.items"] = source


def enforce_contract(data: dict[str, Any]) -> None:
    node(data, "model.p.mart")["contract"] = {"enforced": True, "checksum": "abc"}


def change_macro(data: dict[str, Any]) -> None:
    data["macros"]["macro.p.inner"]["macro_sql"] = "{% macro inner() %}2{% endmacro %}"


def state_of(edit: Edit) -> tuple[Manifest, SelectionState]:
    previous = previous_project()
    current = copy.deepcopy(previous)
    edit(current)
    return parse_manifest(current), SelectionState(manifest=parse_manifest(previous))


@pytest.mark.parametrize(
    ("edit", "selector", "expected"),
    [
        (lambda data: None, "modified", set()),
        (setter("model.p.stg", raw_code="select 2"), "modified", {"stg"}),
        (setter("model.p.stg", raw_code="select 2"), "modified.body", {"stg"}),
        (setter("model.p.stg", raw_code="select 2"), "modified.configs", set()),
        (config_setter("model.p.mart", "materialized", "view"), "modified.configs", {"mart"}),
        (config_setter("model.p.mart", "materialized", "view"), "modified", {"mart"}),
        (config_setter("model.p.mart", "tags", ["x"]), "modified", set()),
        (config_setter("model.p.mart", "alias", "m"), "modified.relation", {"mart"}),
        (config_setter("model.p.mart", "alias", "m"), "modified.configs", set()),
        (config_setter("model.p.mart", "alias", "m"), "modified", {"mart"}),
        (setter("model.p.mart", description="new"), "modified.persisted_descriptions", {"mart"}),
        (setter("model.p.stg", description="new"), "modified", set()),
        (change_macro, "modified.macros", {"stg"}),
        (change_macro, "modified", {"stg"}),
        (
            setter("seed.p.raw", checksum={"name": "sha256", "checksum": "other"}),
            "modified.body",
            {"raw"},
        ),
        (config_setter("test.p.not_null_stg", "severity", "warn"), "modified", {"not_null_stg"}),
        (setter("test.p.not_null_stg", raw_code="changed"), "modified", set()),
        (setter("test.p.assert_mart", raw_code="changed"), "modified", {"assert_mart"}),
        (setter("unit_test.p.mart.test_mart", checksum="changed"), "modified", {"test_mart"}),
        (setter("unit_test.p.mart.test_mart", checksum="changed"), "modified.body", set()),
        (add_model, "new", {"fresh", "app.items"}),
        (add_model, "modified", {"fresh"}),
        (add_model, "modified.contract", {"fresh"}),
        (
            add_model,
            "old",
            {
                "raw",
                "stg",
                "mart",
                "other",
                "not_null_stg",
                "assert_mart",
                "test_mart",
                "dash",
                "app.orders",
            },
        ),
        (enforce_contract, "modified.contract", {"mart"}),
        (enforce_contract, "modified", {"mart"}),
        (setter("model.p.mart", latest_version=2), "modified", {"mart"}),
        (setter("exposure.p.dash", owner={"name": "finance"}), "modified", {"dash"}),
        (setter("exposure.p.dash", owner={"name": "finance"}), "modified.configs", set()),
        (
            setter("source.p.app.orders", freshness={"warn_after": {"count": 2, "period": "day"}}),
            "modified",
            {"app.orders"},
        ),
        (setter("source.p.app.orders", database="elsewhere"), "modified.relation", {"app.orders"}),
    ],
)
def test_state_selector_compares_like_dbt(edit: Edit, selector: str, expected: set[str]) -> None:
    current, state = state_of(edit)
    selected = select(current, f"state:{selector}", state=state, indirect_selection="empty")
    assert {uid.split(".", 2)[-1].removeprefix("mart.") for uid in selected} == expected


def test_unmodified_is_the_complement_of_modified() -> None:
    current, state = state_of(setter("model.p.stg", raw_code="select 2"))
    everything = select(current, indirect_selection="empty")
    modified = select(current, "state:modified", state=state, indirect_selection="empty")
    unmodified = select(current, "state:unmodified", state=state, indirect_selection="empty")
    assert modified | unmodified == everything
    assert not modified & unmodified


def test_state_modified_plus_takes_descendants() -> None:
    current, state = state_of(setter("model.p.stg", raw_code="select 2"))
    selected = select(current, "state:modified+", state=state, resource_types=["model"])
    assert selected == {"model.p.stg", "model.p.mart"}


@pytest.mark.parametrize(
    ("expression", "state", "message"),
    [
        ("state:modified", None, "previous manifest"),
        ("state:modified", SelectionState(results={}), "previous manifest"),
        ("result:error", SelectionState(), "run_results.json"),
        ("source_status:fresher", SelectionState(), "previous sources.json"),
        ("source_status:fresher", SelectionState(sources={}), "current sources.json"),
    ],
)
def test_missing_artifact_raises_state_error(
    expression: str, state: SelectionState | None, message: str
) -> None:
    m = ManifestBuilder().model("a").build()
    with pytest.raises(StateError, match=message) as info:
        select(m, expression, state=state)
    assert info.value.part == expression


def test_unknown_state_selector_raises() -> None:
    current, state = state_of(lambda data: None)
    with pytest.raises(SelectionError, match=r"modified\.body"):
        select(current, "state:changed", state=state)


def test_result_selects_by_previous_status() -> None:
    m = ManifestBuilder().model("a").model("b", depends_on=["a"]).model("c").build()
    state = SelectionState(
        results={"model.p.a": "error", "model.p.c": "success", "model.p.gone": "error"}
    )
    assert select(m, "result:error", state=state) == {"model.p.a"}
    assert select(m, "result:error+", state=state) == {"model.p.a", "model.p.b"}


def at(day: int) -> datetime:
    return datetime(2024, 1, day, tzinfo=UTC)


def test_source_status_fresher_mirrors_dbt() -> None:
    b = ManifestBuilder()
    for name in "abcdef":
        b.source("app", name)
    m = b.build()
    previous = {"a": at(1), "b": at(2), "c": None, "e": at(1), "f": at(1)}
    current = {"a": at(2), "b": at(2), "c": at(2), "d": at(2), "e": None}
    state = SelectionState(
        sources={f"source.p.app.{k}": v for k, v in previous.items()},
        current_sources={f"source.p.app.{k}": v for k, v in current.items()},
    )
    # a: newer data; c: the previous check failed; d: not checked before.
    expected = {"source.p.app.a", "source.p.app.c", "source.p.app.d"}
    assert select(m, "source_status:fresher", state=state) == expected
    assert select(m, "source_status:stale", state=state) == frozenset()


def write_state(directory: Path, manifest: dict[str, Any] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    if manifest is not None:
        (directory / "manifest.json").write_text(json.dumps(manifest))
    (directory / "run_results.json").write_text(
        json.dumps({"results": [{"unique_id": "model.p.a", "status": "error"}]})
    )
    (directory / "sources.json").write_text(
        json.dumps(
            {
                "results": [
                    {
                        "unique_id": "source.p.app.t",
                        "status": "pass",
                        "max_loaded_at": "2024-01-01T00:00:00Z",
                    },
                    {"unique_id": "source.p.app.u", "status": "runtime error"},
                ]
            }
        )
    )
    return directory


def test_load_reads_the_three_artifacts(tmp_path: Path) -> None:
    state_dir = write_state(tmp_path / "state", ManifestBuilder().model("a").build_dict())
    target = write_state(tmp_path / "target")
    state = SelectionState.load(state_dir, target_dir=target)
    assert state.manifest is not None and "model.p.a" in state.manifest.nodes
    assert state.results == {"model.p.a": "error"}
    assert state.sources == {"source.p.app.t": at(1), "source.p.app.u": None}
    assert state.current_sources == state.sources


def test_load_leaves_out_missing_files(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    state = SelectionState.load(tmp_path / "empty")
    assert (state.manifest, state.results, state.sources, state.current_sources) == (
        None,
        None,
        None,
        None,
    )


def test_load_of_a_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="does not exist"):
        SelectionState.load(tmp_path / "nope")


@pytest.mark.parametrize("content", ["{not json", '{"results": [{"status": "error"}]}'])
def test_load_of_a_malformed_artifact_raises(tmp_path: Path, content: str) -> None:
    (tmp_path / "run_results.json").write_text(content)
    with pytest.raises(StateError, match=r"run_results\.json"):
        SelectionState.load(tmp_path)


def test_select_reads_a_state_directory_and_the_current_target(tmp_path: Path) -> None:
    b = ManifestBuilder().model("a").source("app", "t")
    manifest = b.build_file(tmp_path / "target")
    write_state(tmp_path / "target")
    (tmp_path / "target" / "sources.json").write_text(
        json.dumps(
            {
                "results": [
                    {
                        "unique_id": "source.p.app.t",
                        "status": "pass",
                        "max_loaded_at": "2024-01-02T00:00:00+00:00",
                    }
                ]
            }
        )
    )
    state_dir = write_state(tmp_path / "state", b.build_dict())
    assert select(manifest, "result:error", state=state_dir) == {"model.p.a"}
    assert select(manifest, "source_status:fresher", state=str(state_dir)) == {"source.p.app.t"}
