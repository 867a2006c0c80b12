"""Generate a synthetic dbt project for benchmarks.

Usage::

    python benchmarks/generate_project.py OUT_DIR --models N [--seeds S] [--sources K]
        [--layers L] [--rng-seed R] [--own-source-tables]

writes the dbt project ``bench`` (profile ``bench``) to ``OUT_DIR``:

* ``profiles.yml`` with two targets: ``duckdb`` (the default; file from ``BENCH_DUCKDB_PATH``,
  default ``bench.duckdb``) and ``postgres`` (``BENCH_PG_HOST``, ``BENCH_PG_PORT``,
  ``BENCH_PG_USER``, ``BENCH_PG_PASSWORD``, ``BENCH_PG_DBNAME``, ``BENCH_PG_SCHEMA``).
* ``S`` seeds ``seed_<i>`` (20 rows: ``id, category, amount, loaded_at``).
* ``K`` sources ``raw.src_<k>`` with freshness, each reading a seed's table. With
  ``--own-source-tables`` each source reads a table of its own instead (the seed
  ``src_<k>_rows``, which no model refs), and the layer-0 models read the sources in turn, so
  every source is read and new rows in one source's table reach that source's descendants only
  (what data-aware caching is measured on).
* ``N`` models in ``L`` layers ``models/layer_<l>/``: a layer-0 model reads a source or a seed; a
  model of a later layer left-joins 1-3 models of earlier layers on ``id``, so every model has
  the seeds' 20 ids. Models reading a source carry ``-- depends_on: {{ ref('seed_<i>') }}`` so
  that ``dbt build`` seeds first. The last layer is tables, the rest views.
* Tags ``layer_<l>`` and one of ``daily``/``hourly``/``finance`` per model.
* Generic tests: ``not_null`` on every model's ``id``, ``unique`` on every third model's, and a
  ``relationships`` test from every model with a model parent to that parent.

Everything is deterministic for given arguments (``--rng-seed`` picks another wiring). The
project builds on DuckDB and PostgreSQL with every test passing.
"""

from __future__ import annotations

import argparse
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

ROWS = 20
_TAGS = ("daily", "hourly", "finance")

_PROFILES = """\
bench:
  target: duckdb
  outputs:
    duckdb:
      type: duckdb
      path: "{{ env_var('BENCH_DUCKDB_PATH', 'bench.duckdb') }}"
      schema: main
      threads: 4
    postgres:
      type: postgres
      host: "{{ env_var('BENCH_PG_HOST', '127.0.0.1') }}"
      port: "{{ env_var('BENCH_PG_PORT', '5432') | as_number }}"
      user: "{{ env_var('BENCH_PG_USER', 'postgres') }}"
      password: "{{ env_var('BENCH_PG_PASSWORD', '') }}"
      dbname: "{{ env_var('BENCH_PG_DBNAME', 'postgres') }}"
      schema: "{{ env_var('BENCH_PG_SCHEMA', 'bench') }}"
      threads: 4
"""

_PROJECT = """\
name: bench
version: "1.0.0"
config-version: 2
profile: bench
model-paths: ["models"]
seed-paths: ["seeds"]
models:
  bench:
    +materialized: view
    layer_{last}:
      +materialized: table
seeds:
  bench:
    +column_types:
      id: integer
      amount: integer
      loaded_at: timestamp
"""


@dataclass(frozen=True)
class Model:
    name: str
    layer: int
    parents: tuple[str, ...]  # model names
    reads: str  # for layer 0: "source:<k>" or "seed:<i>"; else ""
    tag: str


def plan_models(
    models: int,
    seeds: int,
    sources: int,
    layers: int,
    rng_seed: int,
    *,
    own_source_tables: bool = False,
) -> list[Model]:
    """The models' names, layers and parents, deterministic for the arguments."""
    rng = random.Random(rng_seed)
    layers = max(1, min(layers, models))
    per_layer = [models // layers + (1 if i < models % layers else 0) for i in range(layers)]
    planned: list[Model] = []
    earlier: list[str] = []
    for layer, count in enumerate(per_layer):
        current: list[str] = []
        for i in range(count):
            name = f"model_{layer}_{i}"
            tag = _TAGS[len(planned) % len(_TAGS)]
            if layer == 0:
                use_source = sources > 0 and (seeds == 0 or i % 2 == 0)
                # Without own tables, even models read even sources only (kept for comparable
                # figures); with them, the sources are read in turn.
                source = (
                    (i // 2) % sources if own_source_tables and sources else i % max(sources, 1)
                )
                reads = f"source:{source}" if use_source else f"seed:{i % max(seeds, 1)}"
                planned.append(Model(name, layer, (), reads, tag))
            else:
                fan_in = min(rng.randint(1, 3), len(earlier))
                parents = tuple(rng.sample(earlier, fan_in))
                planned.append(Model(name, layer, parents, "", tag))
            current.append(name)
        earlier.extend(current)
    return planned


def _seed_csv(index: int) -> str:
    rows = ["id,category,amount,loaded_at"]
    for row in range(1, ROWS + 1):
        day = 1 + (row + index) % 28
        category = _TAGS[(row + index) % 3]
        rows.append(f"{row},{category},{row * (index + 1)},2024-01-{day:02d} 00:00:00")
    return "\n".join(rows) + "\n"


def _model_sql(model: Model, seeds: int, own_source_tables: bool) -> str:
    if not model.parents:
        kind, index = model.reads.split(":")
        if kind == "source":
            loader = _source_table(int(index), seeds, own_source_tables)
            return (
                f"-- depends_on: {{{{ ref('{loader}') }}}}\n"
                "select id, category, amount, loaded_at\n"
                f"from {{{{ source('raw', 'src_{index}') }}}}\n"
            )
        return f"select id, category, amount, loaded_at from {{{{ ref('seed_{index}') }}}}\n"
    first, *others = model.parents
    amount = " + ".join(
        ["p0.amount", *(f"coalesce(p{i}.amount, 0)" for i in range(1, len(model.parents)))]
    )
    joins = "".join(
        f"left join {{{{ ref('{parent}') }}}} as p{i} on p{i}.id = p0.id\n"
        for i, parent in enumerate(others, start=1)
    )
    return (
        f"select p0.id, p0.category, {amount} as amount, p0.loaded_at\n"
        f"from {{{{ ref('{first}') }}}} as p0\n{joins}"
    )


def _schema_yml(models: list[Model]) -> str:
    lines = ["version: 2", "models:"]
    for index, model in enumerate(models):
        tests = ["          - not_null"]
        if index % 3 == 0:
            tests.append("          - unique")
        if model.parents:
            tests += [
                "          - relationships:",
                "              arguments:",
                f"                to: ref('{model.parents[0]}')",
                "                field: id",
            ]
        lines += [
            f"  - name: {model.name}",
            "    config:",
            f"      tags: [layer_{model.layer}, {model.tag}]",
            "    columns:",
            "      - name: id",
            "        data_tests:",
            *tests,
        ]
    return "\n".join(lines) + "\n"


def _source_table(index: int, seeds: int, own_source_tables: bool) -> str:
    """The seed whose table source ``src_<index>`` reads."""
    return f"src_{index}_rows" if own_source_tables else f"seed_{index % max(seeds, 1)}"


def _sources_yml(sources: int, seeds: int, own_source_tables: bool) -> str:
    lines = [
        "version: 2",
        "sources:",
        "  - name: raw",
        '    schema: "{{ target.schema }}"',
        "    loaded_at_field: loaded_at",
        "    freshness:",
        "      warn_after: {count: 100000, period: day}",
        "      error_after: {count: 200000, period: day}",
        "    tables:",
    ]
    for k in range(sources):
        table = _source_table(k, seeds, own_source_tables)
        lines += [f"      - name: src_{k}", f"        identifier: {table}"]
    return "\n".join(lines) + "\n"


def generate(
    out_dir: Path,
    *,
    models: int,
    seeds: int = 10,
    sources: int = 10,
    layers: int = 8,
    rng_seed: int = 0,
    own_source_tables: bool = False,
) -> Path:
    """Write the project to ``out_dir`` (replacing what is there) and return it."""
    if models < 1:
        raise ValueError("--models must be at least 1")
    if sources and not seeds:
        raise ValueError("sources read seed tables: --sources needs --seeds > 0")
    if seeds < 1 and sources < 1:
        raise ValueError("layer-0 models need a seed or a source to read")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    planned = plan_models(
        models, seeds, sources, layers, rng_seed, own_source_tables=own_source_tables
    )
    last = max(m.layer for m in planned)
    (out_dir / "seeds").mkdir(parents=True)
    (out_dir / "dbt_project.yml").write_text(_PROJECT.format(last=last))
    (out_dir / "profiles.yml").write_text(_PROFILES)
    for i in range(seeds):
        (out_dir / "seeds" / f"seed_{i}.csv").write_text(_seed_csv(i))
    if own_source_tables:
        for k in range(sources):
            (out_dir / "seeds" / f"src_{k}_rows.csv").write_text(_seed_csv(seeds + k))
    (out_dir / "models").mkdir()
    if sources:
        (out_dir / "models" / "sources.yml").write_text(
            _sources_yml(sources, seeds, own_source_tables)
        )
    for layer in range(last + 1):
        folder = out_dir / "models" / f"layer_{layer}"
        folder.mkdir()
        in_layer = [m for m in planned if m.layer == layer]
        for model in in_layer:
            (folder / f"{model.name}.sql").write_text(_model_sql(model, seeds, own_source_tables))
        (folder / "schema.yml").write_text(_schema_yml(in_layer))
    return out_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="where to write the project (replaced)")
    parser.add_argument("--models", type=int, required=True, help="number of models")
    parser.add_argument("--seeds", type=int, default=10, help="number of seeds (default 10)")
    parser.add_argument("--sources", type=int, default=10, help="number of sources (default 10)")
    parser.add_argument("--layers", type=int, default=8, help="model layers (default 8)")
    parser.add_argument("--rng-seed", type=int, default=0, help="wiring seed (default 0)")
    parser.add_argument(
        "--own-source-tables",
        action="store_true",
        help="each source reads a seed table of its own that no model refs, and every source "
        "is read (for data-aware caching)",
    )
    args = parser.parse_args(argv)
    out = generate(
        args.out_dir,
        models=args.models,
        seeds=args.seeds,
        sources=args.sources,
        layers=args.layers,
        rng_seed=args.rng_seed,
        own_source_tables=args.own_source_tables,
    )
    print(out)


if __name__ == "__main__":
    main()
