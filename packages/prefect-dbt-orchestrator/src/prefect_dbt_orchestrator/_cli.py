"""``dbt-orchestrator``: plan or build a dbt project under Prefect from the command line.

Flags follow dbt's (``-s/--select``, ``--exclude``, ``--selector``, ``-t/--target``, ``--vars``,
``--full-refresh``, ``--project-dir``, ``--profiles-dir``) plus the orchestrator's own
(``--mode``, ``--concurrency``, ``--retries``, ``--test-strategy``, ``--cache``,
``--data-aware``, ``--only-fresh-sources``).

``build`` runs inside a Prefect flow named ``dbt-build`` (with no Prefect API configured,
Prefect starts its own temporary local server), shows progress per node, writes dbt's
``run_results.json`` and exits with:

* 0 when every node succeeded (warnings, cache hits and stale-source skips included);
* 1 when a node failed;
* 2 when the build could not run (bad flags, selection, project or profile).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from prefect_dbt_orchestrator._orchestrator import PrefectDbtOrchestrator

EXIT_OK, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code (the console script exits with it)."""
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        vars = parse_vars(args.vars)
    except ValueError as exc:
        parser.error(str(exc))
    if args.project_dir is not None:
        # dbt's own variable: profiles can place files in the project, e.g.
        # path: "{{ env_var('DBT_PROJECT_DIR', '.') }}/jaffle_shop.duckdb".
        os.environ["DBT_PROJECT_DIR"] = str(args.project_dir.absolute())
    if args.command == "build":
        _quiet_prefect_console()
    out = sys.stdout
    try:
        if args.command == "plan":
            return _plan(args, vars, out)
        return _build(args, vars, out)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130


def make_parser() -> argparse.ArgumentParser:
    """The argument parser (``allow_abbrev=False``: a flag is spelled out or not accepted)."""
    parser = argparse.ArgumentParser(
        prog="dbt-orchestrator",
        description="Plan or build a dbt project with Prefect driving it node by node.",
        allow_abbrev=False,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{plan,build}")
    for name, summary in (
        ("plan", "print what a build would run (waves, cache predictions), running nothing"),
        ("build", "build the project in a Prefect flow, with progress per node"),
    ):
        sub = commands.add_parser(name, help=summary, description=summary, allow_abbrev=False)
        _add_flags(sub)
    return parser


def _add_flags(sub: argparse.ArgumentParser) -> None:
    _add_dbt_flags(sub.add_argument_group("dbt flags"))
    _add_orchestrator_flags(sub.add_argument_group("orchestrator flags"))


def _add_dbt_flags(dbt: Any) -> None:
    dbt.add_argument(
        "-s",
        "--select",
        nargs="+",
        action="extend",
        metavar="SELECTOR",
        help="dbt selection (several values are a union, as in dbt)",
    )
    dbt.add_argument(
        "--exclude", nargs="+", action="extend", metavar="SELECTOR", help="dbt exclusion"
    )
    dbt.add_argument("--selector", metavar="NAME", help="a YAML selector's name")
    dbt.add_argument(
        "-t", "--target", metavar="NAME", help="the dbt target (default: the profile's)"
    )
    dbt.add_argument(
        "--vars", metavar="YAML", help="dbt vars as a YAML or JSON mapping: '{key: value}'"
    )
    dbt.add_argument("--full-refresh", action="store_true", help="rebuild incremental models")
    dbt.add_argument(
        "--project-dir", type=Path, metavar="DIR", help="the dbt project (default: current dir)"
    )
    dbt.add_argument(
        "--profiles-dir",
        type=Path,
        metavar="DIR",
        help="where profiles.yml is (default: $DBT_PROFILES_DIR, else the project dir if it "
        "has one, else the current dir, else ~/.dbt)",
    )


def _add_orchestrator_flags(ours: Any) -> None:
    ours.add_argument(
        "--mode",
        choices=("per-wave", "per-node"),
        default="per-wave",
        help="one dbt invocation per wave (default), or a Prefect task per node",
    )
    ours.add_argument(
        "--concurrency",
        type=_concurrency,
        metavar="N|LIMIT",
        help="per-node: worker count, or a Prefect global concurrency limit name",
    )
    ours.add_argument(
        "--retries",
        type=_non_negative,
        default=0,
        metavar="N",
        help="per-node: retries of a failed node",
    )
    ours.add_argument(
        "--test-strategy",
        choices=("immediate", "deferred", "skip"),
        default="immediate",
        help="when tests run (default: as dbt build)",
    )
    ours.add_argument(
        "--cache",
        action="store_true",
        help="per-node: reuse results of unchanged nodes across runs",
    )
    ours.add_argument(
        "--data-aware",
        action="store_true",
        help="per-node: cache with data-aware keys (implies --cache): also reuse results whose "
        "upstream sources have no new data",
    )
    ours.add_argument(
        "--only-fresh-sources",
        action="store_true",
        help="skip nodes fed by sources that fail `dbt source freshness`",
    )


def parse_vars(text: str | None) -> dict[str, Any] | None:
    """dbt's ``--vars``: a YAML (or JSON) mapping.

    >>> parse_vars("{start_date: '2024-01-01', limit: 3}")
    {'start_date': '2024-01-01', 'limit': 3}

    Raises:
        ValueError: Not YAML, or not a mapping.
    """
    if text is None or not text.strip():
        return None
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"--vars is not valid YAML or JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"--vars must be a mapping like '{{key: value}}', got {text!r}")
    return value


def _quiet_prefect_console() -> None:
    """Leave the console to the progress lines and the summary.

    The flow's and tasks' log lines (dbt's among them, failures with their tracebacks) still
    reach the Prefect API, so the UI has them all; the console keeps Prefect's own warnings
    (an unreachable API, say).
    """
    from prefect.logging.handlers import PrefectConsoleHandler

    names = list(logging.root.manager.loggerDict)
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in names)]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            if isinstance(handler, PrefectConsoleHandler):
                handler.setLevel(max(handler.level, logging.WARNING))
                handler.addFilter(_not_run_logs)


def _not_run_logs(record: logging.LogRecord) -> bool:
    return not record.name.startswith(("prefect.flow_runs", "prefect.task_runs"))


def _concurrency(text: str) -> int | str:
    return int(text) if text.strip().isdigit() else text


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _orchestrator(args: argparse.Namespace) -> PrefectDbtOrchestrator:
    from prefect_dbt_orchestrator import PrefectDbtOrchestrator, PrefectDbtSettings

    fields: dict[str, Any] = {}
    if args.project_dir is not None:
        fields["project_dir"] = args.project_dir.absolute()
    if args.profiles_dir is not None:
        fields["profiles_dir"] = args.profiles_dir.absolute()
    return PrefectDbtOrchestrator(
        settings=PrefectDbtSettings(**fields),
        execution_mode=args.mode.replace("-", "_"),
        test_strategy=args.test_strategy,
        retries=args.retries,
        concurrency=args.concurrency,
        cache=_cache_config(args),
        write_run_results=args.command == "build",
    )


def _cache_config(args: argparse.Namespace) -> Any:
    from prefect_dbt_orchestrator import CacheConfig

    if args.data_aware:
        return CacheConfig(data_aware=True)
    return CacheConfig() if args.cache else None


def _selection(args: argparse.Namespace, vars: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        "select": " ".join(args.select) if args.select else None,
        "exclude": " ".join(args.exclude) if args.exclude else None,
        "selector": args.selector,
        "target": args.target,
        "vars": vars,
        "full_refresh": args.full_refresh,
        "only_fresh_sources": args.only_fresh_sources,
    }


def _build(args: argparse.Namespace, vars: Mapping[str, Any] | None, out: TextIO) -> int:
    from prefect_dbt_orchestrator._cli_build import build

    try:
        orch = _orchestrator(args)
    except Exception as exc:
        return unusable(exc)
    return build(orch, args, _selection(args, vars), out)


def _plan(args: argparse.Namespace, vars: Mapping[str, Any] | None, out: TextIO) -> int:
    try:
        orch = _orchestrator(args)
    except Exception as exc:
        return unusable(exc)
    with orch:
        try:
            plan = orch.plan(**_selection(args, vars))
        except Exception as exc:
            return unusable(exc)
    print(plan, file=out)
    return EXIT_OK


def unusable(exc: BaseException) -> int:
    """Report why the command could not run; the exit code for that."""
    print(f"dbt-orchestrator: error: {type(exc).__name__}: {exc}", file=sys.stderr)
    return EXIT_UNUSABLE


if __name__ == "__main__":
    raise SystemExit(main())
