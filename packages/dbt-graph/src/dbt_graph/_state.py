"""The comparison artifacts behind ``state:``, ``result:`` and ``source_status:`` selectors.

dbt reads them from the ``--state`` directory: ``manifest.json`` (the previous manifest),
``run_results.json`` (the previous run's statuses) and ``sources.json`` (the previous freshness
check), plus the *current* ``sources.json`` from the project's target directory.
:class:`SelectionState` holds them already parsed; :meth:`SelectionState.load` reads the files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from dbt_graph._errors import StateError
from dbt_graph._loader import load_manifest
from dbt_graph._manifest import Manifest


@dataclass(frozen=True, kw_only=True, eq=False)
class SelectionState:
    """What state-based selectors compare against; any part may be missing.

    Attributes:
        manifest: The previous manifest (``state:new``, ``state:modified``...).
        results: unique_id -> status of the previous run, from ``run_results.json``
            (``result:error``...).
        sources: unique_id -> ``max_loaded_at`` of the previous freshness check, ``None``
            where it failed with a runtime error (``source_status:fresher``).
        current_sources: The same for the current freshness check (the project's
            ``target/sources.json``).

    Example:
        >>> from dbt_graph.testing import ManifestBuilder
        >>> previous = ManifestBuilder().model("orders").build()
        >>> state = SelectionState(manifest=previous, results={"model.p.orders": "error"})
        >>> state.results["model.p.orders"]
        'error'
    """

    manifest: Manifest | None = None
    results: Mapping[str, str] | None = None
    sources: Mapping[str, datetime | None] | None = None
    current_sources: Mapping[str, datetime | None] | None = None

    @classmethod
    def load(cls, state_dir: str | Path, *, target_dir: str | Path | None = None) -> SelectionState:
        """Read the artifacts of a dbt ``--state`` directory; missing files are left out.

        Args:
            state_dir: The directory with the previous ``manifest.json``, ``run_results.json``
                and ``sources.json``.
            target_dir: The current project's target directory, whose ``sources.json`` is the
                current freshness check (dbt's ``--target-path``).

        Raises:
            StateError: ``state_dir`` is not a directory, or an artifact is malformed.
            ManifestError: The previous manifest.json cannot be read.

        Example:
            >>> import tempfile
            >>> from dbt_graph.testing import ManifestBuilder
            >>> prod_artifacts = tempfile.TemporaryDirectory()  # e.g. "prod-artifacts", from CI
            >>> _ = ManifestBuilder().model("orders").write(prod_artifacts.name)
            >>> state = SelectionState.load(prod_artifacts.name, target_dir="target")
            >>> list(state.manifest.nodes), state.results
            (['model.p.orders'], None)
            >>> prod_artifacts.cleanup()
        """
        directory = Path(state_dir)
        if not directory.is_dir():
            raise StateError(
                f"The state directory {str(directory)!r} does not exist. Pass the directory "
                "holding the previous run's manifest.json (dbt's --state).",
                part=str(directory),
            )
        manifest_file = directory / "manifest.json"
        current = Path(target_dir) / "sources.json" if target_dir is not None else None
        return cls(
            manifest=load_manifest(manifest_file) if manifest_file.is_file() else None,
            results=_read(directory / "run_results.json", parse_run_results),
            sources=_read(directory / "sources.json", parse_sources),
            current_sources=_read(current, parse_sources) if current is not None else None,
        )


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _RunResult(_Lenient):
    unique_id: str
    status: str


class _RunResults(_Lenient):
    results: list[_RunResult]


class _Freshness(_Lenient):
    unique_id: str
    max_loaded_at: datetime | None = None


class _Sources(_Lenient):
    results: list[_Freshness]


def parse_run_results(data: Any) -> dict[str, str]:
    """unique_id -> status from decoded ``run_results.json``.

    Raises:
        StateError: The data is not a run_results artifact.

    >>> parse_run_results({"results": [{"unique_id": "model.p.a", "status": "success"}]})
    {'model.p.a': 'success'}
    """
    try:
        parsed = _RunResults.model_validate(data)
    except ValidationError as exc:
        raise _malformed("run_results.json", exc) from None
    return {r.unique_id: r.status for r in parsed.results}


def parse_sources(data: Any) -> dict[str, datetime | None]:
    """unique_id -> ``max_loaded_at`` (``None`` for runtime errors) from decoded ``sources.json``.

    Raises:
        StateError: The data is not a sources artifact.

    >>> parse_sources({"results": [{"unique_id": "source.p.s.t", "status": "runtime error"}]})
    {'source.p.s.t': None}
    """
    try:
        parsed = _Sources.model_validate(data)
    except ValidationError as exc:
        raise _malformed("sources.json", exc) from None
    return {r.unique_id: _aware(r.max_loaded_at) for r in parsed.results}


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _malformed(name: str, exc: ValidationError) -> StateError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return StateError(
        f"{name} is malformed ({first['msg']} at {where}). Re-create it with dbt.", part=name
    )


def _read(path: Path, parse: Any) -> Any:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise StateError(
            f"{path} cannot be read as JSON ({exc}). Re-create it with dbt.", part=str(path)
        ) from exc
    return parse(data)
