"""The public API: ``__all__`` is exact and sorted, and the docstring examples run."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import dbt_exec_cloud
import pytest


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(dbt_exec_cloud) if not name.startswith("_")}
    assert set(dbt_exec_cloud.__all__) == public
    assert list(dbt_exec_cloud.__all__) == sorted(dbt_exec_cloud.__all__)
    for name in dbt_exec_cloud.__all__:
        assert getattr(dbt_exec_cloud, name).__module__.startswith("dbt_exec_cloud.")


def test_every_error_descends_from_the_root() -> None:
    errors = [getattr(dbt_exec_cloud, n) for n in dbt_exec_cloud.__all__ if n.endswith("Error")]
    assert len(errors) == 16
    assert all(issubclass(e, dbt_exec_cloud.DbtCloudError) for e in errors)
    assert issubclass(dbt_exec_cloud.RunTimeoutError, TimeoutError)
    assert issubclass(dbt_exec_cloud.InvalidCliArgsError, ValueError)
    assert issubclass(dbt_exec_cloud.RateLimitError, dbt_exec_cloud.TransientError)
    assert issubclass(dbt_exec_cloud.ServerError, dbt_exec_cloud.TransientError)
    assert issubclass(dbt_exec_cloud.JobNotDeletedWarning, UserWarning)


MODULES = [
    "dbt_exec_cloud",
    *sorted(m.name for m in pkgutil.iter_modules(dbt_exec_cloud.__path__, "dbt_exec_cloud.")),
]


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
