"""DbtCloudCredentials and Secret: the key never shows, hosts and base URLs resolve."""

from __future__ import annotations

import pickle
from dataclasses import FrozenInstanceError
from types import SimpleNamespace

import pytest
from dbt_exec_cloud import ConfigurationError, DbtCloudCredentials, Secret
from pydantic import SecretStr

KEY = "dbc_0123-4567-89ab-cdef-TOKEN"


def test_the_key_is_hidden_in_repr_str_and_format() -> None:
    creds = DbtCloudCredentials(KEY, 12345)
    for text in (repr(creds), str(creds), f"{creds}", f"{creds.api_key}", repr(creds.api_key)):
        assert KEY not in text
    assert creds.api_key.get_secret_value() == KEY


def test_pickles_round_trip_without_the_key_in_the_bytes() -> None:
    creds = DbtCloudCredentials(KEY, 12345, "emea.dbt.com")
    data = pickle.dumps(creds)
    assert KEY.encode() not in data
    assert KEY not in repr(data)
    again = pickle.loads(data)
    assert again == creds
    assert again.api_key.get_secret_value() == KEY
    assert KEY not in repr(again)


def test_each_pickle_masks_differently() -> None:
    assert pickle.dumps(Secret(KEY)) != pickle.dumps(Secret(KEY))


def test_is_frozen() -> None:
    creds = DbtCloudCredentials(KEY, 1)
    with pytest.raises(FrozenInstanceError):
        creds.account_id = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("domain", "base"),
    [
        ("cloud.getdbt.com", "https://cloud.getdbt.com/api/v2/accounts/1"),
        ("emea.dbt.com", "https://emea.dbt.com/api/v2/accounts/1"),
        ("ab123.us1.dbt.com", "https://ab123.us1.dbt.com/api/v2/accounts/1"),
        ("http://127.0.0.1:8766", "http://127.0.0.1:8766/api/v2/accounts/1"),
        ("https://acme.getdbt.com/", "https://acme.getdbt.com/api/v2/accounts/1"),
    ],
)
def test_domain_may_be_a_regional_or_single_tenant_host_or_a_full_url(domain, base) -> None:
    assert DbtCloudCredentials(KEY, 1, domain).api_base_url == base


def test_keywords_as_the_guide_uses_them_and_default_domain() -> None:
    creds = DbtCloudCredentials(api_key=KEY, account_id="42")
    assert creds.account_id == 42 and creds.domain == "cloud.getdbt.com"


@pytest.mark.parametrize(
    "api_key", [KEY, SecretStr(KEY), Secret(KEY)], ids=["str", "pydantic", "own"]
)
def test_from_any_accepts_blocks_with_the_same_fields(api_key) -> None:
    block = SimpleNamespace(api_key=api_key, account_id=9, domain="emea.dbt.com")
    creds = DbtCloudCredentials.from_any(block)
    assert creds.api_key.get_secret_value() == KEY
    assert (creds.account_id, creds.domain) == (9, "emea.dbt.com")


def test_from_any_without_domain_uses_the_default() -> None:
    creds = DbtCloudCredentials.from_any(SimpleNamespace(api_key=KEY, account_id=9))
    assert creds.domain == "cloud.getdbt.com"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"api_key": "  ", "account_id": 1}, "API key is empty"),
        ({"api_key": KEY, "account_id": 0}, "positive integer"),
        ({"api_key": KEY, "account_id": "abc"}, "positive integer"),
        ({"api_key": KEY, "account_id": 1, "domain": ""}, "domain is empty"),
    ],
)
def test_invalid_values_are_refused_with_advice(kwargs, message) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        DbtCloudCredentials(**kwargs)
    assert KEY not in str(caught.value)


def test_from_any_refuses_objects_without_the_fields() -> None:
    with pytest.raises(ConfigurationError, match="api_key and account_id"):
        DbtCloudCredentials.from_any(object())
