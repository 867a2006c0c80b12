"""FingerprintSpec: how a source's meta.data_fingerprint is read, and its clear errors."""

from __future__ import annotations

from typing import Any

import pytest
from dbt_graph import (
    FingerprintConfigError,
    FingerprintMethod,
    FingerprintSpec,
    Node,
    ResourceType,
    SourceFingerprinter,
)
from dbt_graph.testing import FakeExecutor, ManifestBuilder


def source(meta: dict[str, Any] | None = None, loaded_at: str | None = "loaded_at") -> Node:
    return Node(
        unique_id="source.p.raw.t",
        name="t",
        package_name="p",
        resource_type=ResourceType.SOURCE,
        meta={"data_fingerprint": meta} if meta is not None else {},
        loaded_at_field=loaded_at,
    )


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("content", FingerprintSpec(method=FingerprintMethod.CONTENT, explicit=True)),
        ("LOADED_AT", FingerprintSpec(method=FingerprintMethod.LOADED_AT, explicit=True)),
        ("none", FingerprintSpec(method=FingerprintMethod.NONE, explicit=True)),
        (
            {"method": "max_column", "column": " id "},
            FingerprintSpec(method=FingerprintMethod.MAX_COLUMN, column="id", explicit=True),
        ),
    ],
)
def test_a_source_chooses_its_method_in_meta(setting: Any, expected: FingerprintSpec) -> None:
    assert FingerprintSpec.for_source(source(setting)) == expected


def test_without_a_setting_the_executor_default_applies() -> None:
    assert FingerprintSpec.for_source(source()).method is FingerprintMethod.CONTENT
    loaded = FingerprintSpec.for_source(source(), default=FingerprintMethod.LOADED_AT)
    assert loaded.method is FingerprintMethod.LOADED_AT and not loaded.explicit
    # loaded_at as a default for a source without loaded_at_field: no fingerprint at all.
    none = FingerprintSpec.for_source(source(loaded_at=None), default=FingerprintMethod.LOADED_AT)
    assert none.method is FingerprintMethod.NONE


@pytest.mark.parametrize(
    ("setting", "loaded_at", "message"),
    [
        ("checksum", "x", "unknown method 'checksum'"),
        ({"method": "max_column"}, "x", "max_column needs a column"),
        ({"method": "content", "column": "id"}, "x", "column is only used with max_column"),
        ({"method": "content", "colum": "id"}, "x", "unknown keys"),
        ("loaded_at", None, "loaded_at needs the source's loaded_at_field"),
    ],
)
def test_an_unusable_setting_is_a_clear_error(
    setting: Any, loaded_at: str | None, message: str
) -> None:
    with pytest.raises(FingerprintConfigError, match=message) as caught:
        FingerprintSpec.for_source(source(setting, loaded_at=loaded_at))
    assert caught.value.unique_id == "source.p.raw.t"


def test_only_sources_have_fingerprints() -> None:
    model = Node(
        unique_id="model.p.m", name="m", package_name="p", resource_type=ResourceType.MODEL
    )
    with pytest.raises(FingerprintConfigError, match="only sources"):
        FingerprintSpec.for_source(model)


def test_the_fake_executor_is_a_source_fingerprinter() -> None:
    fake = FakeExecutor(ManifestBuilder().source("raw", "t").build(), fingerprints={})
    assert isinstance(fake, SourceFingerprinter)
    found = fake.source_fingerprints(["source.p.raw.t"])
    assert found["source.p.raw.t"].usable is False
