"""The dbt command of an ephemeral job, and the job's unique name.

A dbt Cloud job step is one shell-like string. Every token is quoted with :func:`shlex.quote`,
so selectors, vars and extra arguments reach dbt exactly as given.
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dbt_graph import Command, Manifest, Node, SelectionError, node_selector

from dbt_exec_cloud._errors import ConfigurationError

#: Commands that accept ``--full-refresh``.
_FULL_REFRESH_COMMANDS = frozenset({Command.BUILD, Command.RUN, Command.SEED})
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.]+")
_NAME_LENGTH = 40


def dbt_step(
    command: str,
    selectors: Sequence[str] = (),
    *,
    threads: int | None = None,
    full_refresh: bool = False,
    indirect_selection: str | None = None,
    vars: Mapping[str, Any] | None = None,
    extra_args: Iterable[str] = (),
) -> str:
    """One dbt Cloud job step.

    Args:
        command: The dbt command, possibly two words (``source freshness``).
        selectors: ``--select`` values, one per node.
        threads: ``--threads N`` when set.
        full_refresh: Add ``--full-refresh`` (only for build, run and seed, which accept it).
        indirect_selection: ``--indirect-selection`` mode, e.g. ``empty`` so that ``dbt build``
            does not add the tests of selected models.
        vars: ``--vars`` as JSON, keys sorted.
        extra_args: Further arguments, passed through quoted.

    Example:
        >>> print(dbt_step("run", ["fqn:shop.orders"], threads=2, vars={"day": "mon"}))
        dbt run --select fqn:shop.orders --threads 2 --vars '{"day": "mon"}'
    """
    tokens = ["dbt", *command.split()]
    if selectors:
        tokens += ["--select", *selectors]
    if threads is not None:
        tokens += ["--threads", str(threads)]
    if full_refresh and command in _FULL_REFRESH_COMMANDS:
        tokens.append("--full-refresh")
    if indirect_selection is not None:
        tokens += ["--indirect-selection", indirect_selection]
    if vars:
        tokens += ["--vars", json.dumps(dict(vars), sort_keys=True, default=str)]
    tokens += list(extra_args)
    return shlex.join(tokens)


def selectors_for(nodes: Iterable[Node], manifest: Manifest) -> list[str]:
    """The selector of each node (:func:`dbt_graph.node_selector`), in order, no duplicates.

    Raises:
        ConfigurationError: A node is not in the manifest, or no selector singles it out.
    """
    try:
        return list(dict.fromkeys(node_selector(node, manifest) for node in nodes))
    except (KeyError, SelectionError) as exc:
        raise ConfigurationError(
            f"cannot address a node on the dbt command line: {exc}. Resolve the manifest "
            "again if the project changed."
        ) from None


def job_name(prefix: str, command: str, nodes: Sequence[Node] = ()) -> str:
    """A unique, readable job name: ``<prefix>-<command>-<short node name>-<random suffix>``.

    The suffix makes the name unique, which is what lets a lost "create job" answer be
    recovered by looking the job up by name.

    >>> name = job_name("prefect-orchestrator", "run", [])
    >>> name.startswith("prefect-orchestrator-run-") and len(name.rsplit("-", 1)[1]) == 12
    True
    """
    parts = [prefix, command.replace(" ", "-")]
    if nodes:
        short = _UNSAFE_NAME.sub("-", nodes[0].display_name)[:_NAME_LENGTH]
        parts.append(short if len(nodes) == 1 else f"{short}-and-{len(nodes) - 1}-more")
    parts.append(secrets.token_hex(6))
    return "-".join(p for p in parts if p)
