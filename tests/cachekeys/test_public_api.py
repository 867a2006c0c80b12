"""The public surface of dbt_cachekeys: __all__, docstrings, and their examples."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import dbt_cachekeys
import pytest

MODULES = [
    importlib.import_module(f"dbt_cachekeys.{m.name}")
    for m in pkgutil.iter_modules(dbt_cachekeys.__path__)
]


def test_all_lists_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(dbt_cachekeys).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert sorted(dbt_cachekeys.__all__) == sorted(public)
    assert len(set(dbt_cachekeys.__all__)) == len(dbt_cachekeys.__all__)


def test_public_classes_and_functions_are_documented_where_they_live() -> None:
    for name in dbt_cachekeys.__all__:
        value = getattr(dbt_cachekeys, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), name
            assert value.__module__.startswith("dbt_cachekeys._"), name


@pytest.mark.parametrize("module", [dbt_cachekeys, *MODULES], ids=lambda m: m.__name__)
def test_docstring_examples_run(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.failed == 0
