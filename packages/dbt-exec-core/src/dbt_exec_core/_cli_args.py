"""Validation of the extra CLI arguments users pass through to dbt.

The table follows the orchestrator guide:

* **blocked** flags would break how nodes are selected or where dbt reads and writes, so they
  raise :class:`~dbt_exec_core.InvalidCliArgsError` (a ``ValueError``) saying why;
* **first-class** flags have a parameter of their own, so they raise naming that parameter;
* **caveat** flags are passed through with a logged warning, because they can silently change
  which of the requested nodes dbt runs.

Flags are recognised the way dbt's command line (click) reads them: ``--flag value``,
``--flag=value``, short forms (``-s``, ``-m``, ``-t``, ``-f``, ``-x``), short forms with the value
attached (``-sfoo``) and clusters of short flags (``-xs foo``). Unlike argparse, click does not
expand abbreviations, so ``--full`` or ``--sel`` are *not* those flags: they pass through and dbt
reports them as unknown options. Nothing here exits the process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from dbt_exec_core._errors import InvalidCliArgsError

logger = logging.getLogger("dbt_exec_core")

_SELECTION = "the executor selects exactly the requested nodes"


@dataclass(frozen=True)
class _Flag:
    name: str  # the canonical spelling used in messages
    takes_value: bool
    kind: str  # "blocked", "first-class" or "caveat"
    why: str  # the reason (blocked), the parameter to use (first-class) or the caveat


_FLAGS: tuple[tuple[tuple[str, ...], _Flag], ...] = (
    (("--select", "-s"), _Flag("--select", True, "blocked", _SELECTION)),
    (("--models", "--model", "-m"), _Flag("--models", True, "blocked", _SELECTION)),
    (("--exclude",), _Flag("--exclude", True, "blocked", _SELECTION)),
    (("--selector",), _Flag("--selector", True, "blocked", _SELECTION)),
    (
        ("--indirect-selection",),
        _Flag(
            "--indirect-selection",
            True,
            "blocked",
            "the executor schedules tests itself and always runs dbt with "
            "--indirect-selection empty",
        ),
    ),
    (
        ("--project-dir",),
        _Flag("--project-dir", True, "blocked", "the project directory comes from the settings"),
    ),
    (
        ("--target-path",),
        _Flag(
            "--target-path",
            True,
            "blocked",
            "every worker writes to a target directory of its own so that concurrent runs "
            "never share run_results.json or partial_parse.msgpack",
        ),
    ),
    (
        ("--profiles-dir",),
        _Flag("--profiles-dir", True, "blocked", "the profiles directory comes from the settings"),
    ),
    (
        ("--log-level",),
        _Flag(
            "--log-level",
            True,
            "blocked",
            "the executor captures dbt's events itself (use --log-level-file for dbt's log file)",
        ),
    ),
    (("--full-refresh", "-f"), _Flag("--full-refresh", False, "first-class", "full_refresh=True")),
    (("--target", "-t"), _Flag("--target", True, "first-class", 'target="..."')),
    (("--threads",), _Flag("--threads", True, "first-class", "threads=N")),
    (("--defer", "--no-defer"), _Flag("--defer", False, "first-class", "defer=True")),
    (("--deprecated-defer",), _Flag("--defer", False, "first-class", "defer=True")),
    (("--state",), _Flag("--state", True, "first-class", "state_path=Path(...)")),
    (("--deprecated-state",), _Flag("--state", True, "first-class", "state_path=Path(...)")),
    (
        ("--defer-state",),
        _Flag("--defer-state", True, "first-class", "defer_state_path=Path(...)"),
    ),
    (
        ("--favor-state", "--no-favor-state", "--deprecated-favor-state"),
        _Flag("--favor-state", False, "first-class", "favor_state=True"),
    ),
    (
        ("--resource-type", "--resource-types"),
        _Flag(
            "--resource-type",
            True,
            "caveat",
            "it can silently drop requested nodes of other resource types",
        ),
    ),
    (
        ("--exclude-resource-type", "--exclude-resource-types"),
        _Flag(
            "--exclude-resource-type",
            True,
            "caveat",
            "it can silently drop requested nodes of the excluded resource types",
        ),
    ),
    (
        ("--fail-fast", "-x"),
        _Flag(
            "--fail-fast",
            False,
            "caveat",
            "one failure makes dbt skip every other node of the same invocation, including "
            "nodes of other requests coalesced into it",
        ),
    ),
)
_BY_SPELLING: Mapping[str, _Flag] = {
    spelling: flag for spellings, flag in _FLAGS for spelling in spellings
}
#: dbt options (outside the table) that take exactly one value: that value is skipped whatever
#: it looks like, as click does.
_ONE_VALUE = frozenset(
    {
        "--vars",
        "--log-path",
        "--log-level-file",
        "--log-format",
        "--log-format-file",
        "--printer-width",
        "--event-time-start",
        "--event-time-end",
        "--sample",
        "--profile",
        "--warn-error-options",
        "--partial-parse-file-path",
        "--record-timing-info",
        "--output",
        "--output-keys",
    }
)
#: Every short option dbt's commands define, and whether it takes a value. Needed to read short
#: clusters such as ``-xs foo`` the way click does.
_SHORT_TAKES_VALUE = {
    "f": False,
    "m": True,
    "o": True,
    "q": False,
    "r": True,
    "s": True,
    "t": True,
    "v": False,
    "V": False,
    "x": False,
}


def validate_extra_cli_args(args: Iterable[str] | None) -> tuple[str, ...]:
    """Check extra dbt CLI arguments against the orchestrator's flag table.

    Args:
        args: The arguments, as they would follow ``dbt build`` on a command line.

    Returns:
        The arguments unchanged, as a tuple.

    Raises:
        InvalidCliArgsError: A blocked flag (the message says why) or a first-class flag (the
            message names the parameter to use instead). It is a ``ValueError``.

    Example:
        >>> validate_extra_cli_args(["--vars", "{day: 1}", "--full"])
        ('--vars', '{day: 1}', '--full')
        >>> validate_extra_cli_args(["-sorders"])
        Traceback (most recent call last):
        ...
        dbt_exec_core._errors.InvalidCliArgsError: Cannot pass '--select' via extra_cli_args: \
the executor selects exactly the requested nodes
    """
    tokens = tuple(args or ())
    for token in tokens:
        if not isinstance(token, str):
            raise TypeError(f"extra CLI arguments must be strings, got {token!r}")
    for flag, spelled in _recognised_flags(tokens):
        if flag.kind == "blocked":
            raise InvalidCliArgsError(
                f"Cannot pass {flag.name!r} via extra_cli_args: {flag.why}", flag=flag.name
            )
        if flag.kind == "first-class":
            raise InvalidCliArgsError(
                f"Cannot pass {flag.name!r} via extra_cli_args; use the "
                f"{flag.why.split('=')[0]} parameter instead ({flag.why}).",
                flag=flag.name,
            )
        logger.warning(
            "Passing %r (as %r) to dbt: %s. Prefer selecting the nodes to run.",
            flag.name,
            spelled,
            flag.why,
        )
    return tokens


def _recognised_flags(tokens: tuple[str, ...]) -> Iterable[tuple[_Flag, str]]:
    """Yield each flag of the table found in ``tokens``, with the spelling that was used."""
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token == "--":
            return
        if token.startswith("--"):
            name, has_value, _ = token.partition("=")
            flag = _BY_SPELLING.get(name)
            if flag is not None:
                yield flag, token
            if not has_value:
                if name in _ONE_VALUE:
                    i += 1
                else:
                    i = _skip_values(tokens, i, flag)
        elif token.startswith("-") and len(token) > 1:
            for position, char in enumerate(token[1:], start=1):
                flag = _BY_SPELLING.get(f"-{char}")
                if flag is not None:
                    yield flag, token
                takes_value = _SHORT_TAKES_VALUE.get(char)
                if takes_value is None:
                    break  # not a dbt short option: dbt will report it
                if takes_value:
                    if position == len(token) - 1:
                        i = _skip_values(tokens, i, flag)
                    break


def _skip_values(tokens: tuple[str, ...], i: int, flag: _Flag | None) -> int:
    """Step over the value(s) of an option given without ``=``."""
    if flag is not None and not flag.takes_value:
        return i
    # Unknown options may or may not take a value; dbt's commands take no positional
    # arguments, so a following token that is not an option is that option's value. Options
    # such as --select take several values.
    while i < len(tokens) and not tokens[i].startswith("-"):
        i += 1
    return i


def lift_vars(args: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, Any] | None]:
    """Take ``--vars`` out of extra arguments, so the manifest is parsed with those vars.

    Returns:
        The remaining arguments and the vars (the last ``--vars`` wins, as in dbt), or ``None``.

    Raises:
        InvalidCliArgsError: The value is not a YAML mapping.
    """
    rest: list[str] = []
    found: dict[str, Any] | None = None
    i = 0
    while i < len(args):
        token = args[i]
        name, has_value, value = token.partition("=")
        if name == "--vars":
            if not has_value:
                if i + 1 >= len(args):
                    raise InvalidCliArgsError("'--vars' needs a value", flag="--vars")
                value = args[i + 1]
                i += 1
            found = _parse_vars(value)
        else:
            rest.append(token)
        i += 1
    return tuple(rest), found


def _parse_vars(text: str) -> dict[str, Any]:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidCliArgsError(
            f"'--vars' must be a YAML or JSON mapping; {text!r} does not parse ({exc})",
            flag="--vars",
        ) from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidCliArgsError(
            f"'--vars' must be a YAML or JSON mapping, got {type(value).__name__}",
            flag="--vars",
        )
    return value
