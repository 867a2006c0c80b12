"""Helpers for the dbt-cachekeys tests: edited variants of the shop project, keys of a project.

Each variant is a copy of the parsed shop project with one edit, re-parsed by the real dbt. All
variants are parsed in one Python process (dbt's import alone takes seconds), from copies that
keep the session parse's ``partial_parse.msgpack``, so each parse is about a second.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dbt_cachekeys import KeySet, ProjectFiles, compute_keys
from dbt_graph import Manifest, load_manifest


@dataclass(frozen=True)
class Variant:
    """One edit of the shop project, and how to parse it."""

    edit: Callable[[Path], None]
    parse_args: tuple[str, ...] = ()


def _replace(relative: str, old: str, new: str) -> Callable[[Path], None]:
    def edit(project: Path) -> None:
        file = project / relative
        text = file.read_text()
        assert old in text, f"{old!r} not in {relative}"
        file.write_text(text.replace(old, new, 1))

    return edit


def _append(relative: str, extra: str) -> Callable[[Path], None]:
    def edit(project: Path) -> None:
        file = project / relative
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text((file.read_text() if file.exists() else "") + extra)

    return edit


VARIANTS: dict[str, Variant] = {
    "sql": Variant(_append("models/staging/stg_customers.sql", "-- a comment\n")),
    "config": Variant(
        _replace(
            "models/staging/staging.yml",
            "  - name: stg_orders\n",
            "  - name: stg_orders\n    config:\n      meta: {owner: ops}\n",
        )
    ),
    "alias": Variant(
        _replace(
            "models/staging/staging.yml",
            "  - name: stg_customers\n",
            "  - name: stg_customers\n    config:\n      alias: customers_staged\n",
        )
    ),
    "schema": Variant(
        _replace(
            "models/marts/marts.yml",
            '        owner: "finance@example.com"\n',
            '        owner: "finance@example.com"\n      schema: finance\n',
        )
    ),
    "macro_nested": Variant(
        _replace(
            "macros/cents_to_dollars.sql",
            "round({{ expression }}, 2)",
            "round({{ expression }}, 3)",
        )
    ),
    "macro_direct": Variant(_replace("macros/cents_to_dollars.sql", "' / 100.0)'", "' / 100.00)'")),
    "package_macro": Variant(
        _replace("local_pkg/macros/safe_divide.sql", "then null", "then cast(null as double)")
    ),
    "snapshot_block": Variant(
        _replace(
            "snapshots/snapshots.yml", 'check_cols: ["status"]', 'check_cols: ["status", "amount"]'
        )
    ),
    "package_seed": Variant(_append("local_pkg/seeds/pkg_days.csv", "day\n1\n2\n")),
    "target": Variant(lambda project: None, parse_args=("--target", "prod")),
}

_PARSE_ALL = """
import json, sys
from dbt.cli.main import dbtRunner
failures = []
for project, args in json.loads(sys.argv[1]):
    result = dbtRunner().invoke(
        ["parse", "--project-dir", project, "--profiles-dir", project, "--quiet", *args]
    )
    if not result.success:
        failures.append(f"{project}: {result.exception}")
print(json.dumps(failures))
"""


def copy_parsed(source: Path, dest: Path) -> Path:
    """Copy a parsed shop project, pointing its installed local package at the copy's own."""
    shutil.copytree(source, dest, symlinks=True, ignore=shutil.ignore_patterns("logs", "*.duckdb*"))
    link = dest / "dbt_packages" / "shop_utils"
    link.unlink()
    link.symlink_to(dest / "local_pkg", target_is_directory=True)
    return dest


def parse_variants(shop_parsed: Path, base: Path) -> dict[str, Path]:
    """Copy, edit and re-parse every :data:`VARIANTS` entry under ``base``."""
    jobs = []
    projects = {}
    for name, variant in VARIANTS.items():
        project = copy_parsed(shop_parsed, base / name)
        variant.edit(project)
        projects[name] = project
        jobs.append([str(project), list(variant.parse_args)])
    # The profile must look unchanged for dbt to parse partially: same DuckDB path as the base.
    env = {**os.environ, "DBT_DUCKDB_PATH": str(shop_parsed / "shop.duckdb")}
    proc = subprocess.run(
        [sys.executable, "-c", _PARSE_ALL, json.dumps(jobs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    failures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not failures, failures
    return projects


def keys_for(project: Path, **kw: object) -> tuple[Manifest, KeySet]:
    """The manifest of a parsed project and its keys (target ``dev`` unless given)."""
    manifest = load_manifest(project / "target" / "manifest.json")
    reader = ProjectFiles(project, root_package=manifest.project_name)
    options = {"target": "dev", **kw}
    return manifest, compute_keys(manifest, read_file=reader, **options)  # type: ignore[arg-type]
