from __future__ import annotations

import dbt_graph


def test_all_names_exist_and_are_public() -> None:
    for name in dbt_graph.__all__:
        assert not name.startswith("_")
        assert hasattr(dbt_graph, name), name
    assert len(set(dbt_graph.__all__)) == len(dbt_graph.__all__)


def test_all_covers_every_public_name_defined_in_the_package() -> None:
    exported = {
        name
        for name, value in vars(dbt_graph).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("dbt_graph.")
    }
    assert exported <= set(dbt_graph.__all__)
