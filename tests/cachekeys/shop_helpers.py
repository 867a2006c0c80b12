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
    "build_after": Variant(
        _replace(
            "models/marts/marts.yml",
            '        owner: "finance@example.com"\n',
            '        owner: "finance@example.com"\n      freshness:\n'
            "        build_after: {count: 4, period: hour, updates_on: all}\n",
        )
    ),
}

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "shop"


def copy_project(source: Path, dest: Path) -> Path:
    """Copy a shop project (parsed or not), linking its local package as ``dbt deps`` would."""
    ignore = shutil.ignore_patterns("logs", "*.duckdb*", "dbt_packages")
    shutil.copytree(source, dest, symlinks=True, ignore=ignore)
    (dest / "dbt_packages").mkdir()
    (dest / "dbt_packages" / "shop_utils").symlink_to(dest / "local_pkg", target_is_directory=True)
    return dest


def build_projects(root: Path) -> dict[str, Path]:
    """The shop project parsed (``base``) and every variant re-parsed from a copy of it.

    Runs in one Python process, so dbt is imported once; variants start from the base's
    ``partial_parse.msgpack`` (the DuckDB path, part of the profile, stays the same).
    """
    from dbt.cli.main import dbtRunner

    def parse(project: Path, *args: str) -> None:
        result = dbtRunner().invoke(
            [
                "parse",
                "--project-dir",
                str(project),
                "--profiles-dir",
                str(project),
                "--quiet",
                *args,
            ]
        )
        if not result.success:
            raise RuntimeError(f"dbt parse failed in {project}: {result.exception}")

    base = copy_project(FIXTURE, root / "base")
    parse(base)
    projects = {"base": base}
    for name, variant in VARIANTS.items():
        project = copy_project(base, root / name)
        variant.edit(project)
        parse(project, *variant.parse_args)
        projects[name] = project
    return projects


def build_projects_in_child(root: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """:func:`build_projects` in a child process, which also returns the base's keys.

    dbt's global state stays out of the test process, and the keys computed in the child (with
    another hash seed) let a test check that keys do not depend on the process.
    """
    env = {
        **os.environ,
        "DBT_DUCKDB_PATH": str(root / "shop.duckdb"),
        "PYTHONHASHSEED": "12345",
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), *sys.path]),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "cachekeys.shop_helpers", str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    return {name: Path(p) for name, p in out["projects"].items()}, out["base_keys"]


def keys_for(project: Path, **kw: object) -> tuple[Manifest, KeySet]:
    """The manifest of a parsed project and its keys (target ``dev`` unless given)."""
    manifest = load_manifest(project / "target" / "manifest.json")
    reader = ProjectFiles(project, root_package=manifest.project_name)
    options = {"target": "dev", **kw}
    return manifest, compute_keys(manifest, read_file=reader, **options)  # type: ignore[arg-type]


if __name__ == "__main__":
    built = build_projects(Path(sys.argv[1]))
    base_keys = {uid: k.key for uid, k in keys_for(built["base"])[1].items()}
    projects = {name: str(path) for name, path in built.items()}
    print(json.dumps({"projects": projects, "base_keys": base_keys}))
