"""Generate a warehouse-bound dbt project for PostgreSQL: models that take known, skewed times.

Usage::

    python benchmarks/generate_warehouse_project.py OUT_DIR [--models 240] [--chain 24]
        [--short-layers 4] [--rng-seed 0]

writes the dbt project ``warehouse`` (profile ``warehouse``, one target ``postgres`` read from
the same ``BENCH_PG_*`` variables as ``generate_project.py``) to ``OUT_DIR``, and
``OUT_DIR/durations.json``: the seconds each model sleeps, by unique_id.

Every model is a table whose query sleeps on the server (``pg_sleep``) for a known time, so a
build is bound by the warehouse rather than by dbt's CPU:

* **the chain**: ``--chain`` models in layers 0, 1, 2, ..., each reading the one before,
  sleeping 1.2-2.0 s: the long chain that decides the wall time;
* **short branches**: nine in ten of the other models, spread over the first
  ``--short-layers`` layers, each reading 1-2 models of the layer before (the chain's too),
  sleeping 0.05-0.5 s (skewed towards short); one in twenty of them is a heavy leaf of
  1.0-2.0 s that nothing reads;
* **reports**: the last tenth, short models reading one chain model each, at any depth.

The short branches are wide and shallow and the chain is deep: a queue that runs the shallow
layers first (``dbt build``'s, which scores nodes by depth) keeps the chain waiting behind them.
Model names do not give the chain away: every model is ``m_<layer>_<i>``, with the chain's
``i`` drawn at random within its layer. Tests: ``not_null`` on the ``id`` of every third model
(chain models included), cheap queries on 20-row tables. Everything is deterministic for given
arguments.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

ROWS = 20

_PROFILES = """\
warehouse:
  target: postgres
  outputs:
    postgres:
      type: postgres
      host: "{{ env_var('BENCH_PG_HOST', '127.0.0.1') }}"
      port: "{{ env_var('BENCH_PG_PORT', '5432') | as_number }}"
      user: "{{ env_var('BENCH_PG_USER', 'postgres') }}"
      password: "{{ env_var('BENCH_PG_PASSWORD', '') }}"
      dbname: "{{ env_var('BENCH_PG_DBNAME', 'postgres') }}"
      schema: "{{ env_var('BENCH_PG_SCHEMA', 'warehouse') }}"
      threads: 4
"""

_PROJECT = """\
name: warehouse
version: "1.0.0"
config-version: 2
profile: warehouse
model-paths: ["models"]
models:
  warehouse:
    +materialized: table
"""


@dataclass(frozen=True)
class Model:
    name: str
    layer: int
    parents: tuple[str, ...]
    seconds: float
    on_chain: bool


def plan_models(models: int, chain: int, short_layers: int, rng_seed: int) -> list[Model]:
    """The models, their parents and sleep times, deterministic for the arguments."""
    if chain < 1 or short_layers < 1 or models < chain + 2 * short_layers:
        raise ValueError("need --chain >= 1, --short-layers >= 1, --models >= chain + 2 * layers")
    rng = random.Random(rng_seed)
    short = models - chain
    leaves = short // 10  # short reports hanging off the chain
    wide = short - leaves
    counts = [wide // short_layers + (i < wide % short_layers) for i in range(short_layers)]
    layers: list[list[Model | None]] = [[None] * n for n in counts]
    layers += [[] for _ in range(max(chain + 1 - len(layers), 0))]
    chain_models: list[Model] = []
    for k in range(chain):
        name_slot = rng.randrange(len(layers[k]) + 1)
        parents = (chain_models[-1].name,) if chain_models else ()
        model = Model("", k, parents, round(rng.uniform(1.2, 2.0), 2), True)
        layers[k].insert(name_slot, model)
        chain_models.append(model)
    for _ in range(leaves):
        k = rng.randrange(chain)
        layers[k + 1].insert(rng.randrange(len(layers[k + 1]) + 1), None)
    planned: list[Model] = []
    previous: list[Model] = []
    for layer, slots in enumerate(layers):
        current: list[Model] = []
        for i, slot in enumerate(slots):
            name = f"m_{layer:02d}_{i:02d}"
            if slot is not None:  # a chain model: its parent is the previous chain model
                parents = tuple(p.name for p in previous if p.on_chain)
                current.append(Model(name, layer, parents, slot.seconds, True))
                continue
            readable = [p for p in previous if p.seconds < 1.0 or p.on_chain]
            if layer >= short_layers:  # a report on the chain
                readable = [p for p in previous if p.on_chain]
            fan_in = min(rng.randint(1, 2), len(readable))
            parents = tuple(p.name for p in rng.sample(readable, fan_in))
            heavy = layer < short_layers and rng.random() < 0.05
            seconds = rng.uniform(1.0, 2.0) if heavy else 0.05 + 0.45 * rng.random() ** 2
            current.append(Model(name, layer, parents, round(seconds, 2), False))
        planned.extend(current)
        previous = current
    return planned


def _model_sql(model: Model) -> str:
    # The sleep runs once, when the table is built; readers of the table do not sleep.
    work = f"cross join (select 1 as slept from pg_sleep({model.seconds})) as work"
    if not model.parents:
        return (
            f"select g.id, g.id * 10 as amount\nfrom generate_series(1, {ROWS}) as g(id)\n{work}\n"
        )
    first, *others = model.parents
    joins = "".join(
        f"left join {{{{ ref('{parent}') }}}} as p{i} on p{i}.id = p0.id\n"
        for i, parent in enumerate(others, start=1)
    )
    amount = " + ".join(
        ["p0.amount", *(f"coalesce(p{i}.amount, 0)" for i in range(1, len(model.parents)))]
    )
    return f"select p0.id, {amount} as amount\nfrom {{{{ ref('{first}') }}}} as p0\n{joins}{work}\n"


def _schema_yml(models: list[Model], start: int) -> str:
    lines = ["version: 2", "models:"]
    for index, model in enumerate(models, start=start):
        lines.append(f"  - name: {model.name}")
        if index % 3 == 0:
            lines += [
                "    columns:",
                "      - name: id",
                "        data_tests:",
                "          - not_null",
            ]
    return "\n".join(lines) + "\n"


def generate(
    out_dir: Path, *, models: int = 240, chain: int = 24, short_layers: int = 4, rng_seed: int = 0
) -> Path:
    """Write the project and ``durations.json`` to ``out_dir`` (replacing it); return it."""
    planned = plan_models(models, chain, short_layers, rng_seed)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    (out_dir / "models").mkdir(parents=True)
    (out_dir / "dbt_project.yml").write_text(_PROJECT)
    (out_dir / "profiles.yml").write_text(_PROFILES)
    done = 0
    for layer in range(max(m.layer for m in planned) + 1):
        folder = out_dir / "models" / f"layer_{layer:02d}"
        folder.mkdir()
        in_layer = [m for m in planned if m.layer == layer]
        for model in in_layer:
            (folder / f"{model.name}.sql").write_text(_model_sql(model))
        (folder / "schema.yml").write_text(_schema_yml(in_layer, done))
        done += len(in_layer)
    durations = {f"model.warehouse.{m.name}": m.seconds for m in planned}
    (out_dir / "durations.json").write_text(json.dumps(durations, indent=1) + "\n")
    return out_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="where to write the project (replaced)")
    parser.add_argument("--models", type=int, default=240, help="number of models (240)")
    parser.add_argument("--chain", type=int, default=24, help="models on the long chain (24)")
    parser.add_argument(
        "--short-layers", type=int, default=4, help="layers of the short branches (4)"
    )
    parser.add_argument("--rng-seed", type=int, default=0, help="wiring seed (0)")
    args = parser.parse_args(argv)
    out = generate(
        args.out_dir,
        models=args.models,
        chain=args.chain,
        short_layers=args.short_layers,
        rng_seed=args.rng_seed,
    )
    print(out)


if __name__ == "__main__":
    main()
