"""The executors are extras: ``[core]`` brings dbt-exec-core (dbt-core), ``[cloud]``
dbt-exec-cloud. Each is imported only when asked for, so a dbt Cloud user needs no dbt-core and
imports none.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public executor class -> (its package's module, the orchestrator extra that installs it).
EXECUTORS: dict[str, tuple[str, str]] = {
    "DbtCoreExecutor": ("dbt_exec_core", "core"),
    "DbtCloudExecutor": ("dbt_exec_cloud", "cloud"),
}


def executor_class(name: str) -> Any:
    """The executor class ``name``, imported now.

    Raises:
        ImportError: Its package is not installed; the message names the extra to install.

    Example:
        >>> executor_class("DbtCloudExecutor").__name__
        'DbtCloudExecutor'
    """
    module_name, extra = EXECUTORS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != module_name:
            raise  # the package is there but something it needs is broken: dbt's own error
        package = module_name.replace("_", "-")
        raise ImportError(
            f"{name} needs {package}, which is not installed. Install it with: "
            f'pip install "prefect-dbt-orchestrator[{extra}]"',
            name=module_name,
        ) from exc
    return getattr(module, name)
