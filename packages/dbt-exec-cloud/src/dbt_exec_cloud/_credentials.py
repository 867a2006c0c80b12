"""dbt Cloud credentials: the API key as a secret, the account, the host.

The key is held in :class:`Secret`, which never shows its value in ``repr``, ``str``, f-strings,
logs or tracebacks, and which pickles masked so that the token does not appear in the pickle
bytes either (that is obfuscation, not encryption: treat pickled executors as secret material).
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from typing import Any, Protocol

from dbt_exec_cloud._errors import ConfigurationError

#: The multi-tenant dbt Cloud host in North America.
DEFAULT_DOMAIN = "cloud.getdbt.com"


class SecretLike(Protocol):
    """Anything holding a secret string, e.g. pydantic's ``SecretStr`` or :class:`Secret`."""

    def get_secret_value(self) -> str: ...


class Secret:
    """A string that does not reveal itself.

    >>> key = Secret("dbc_abc123")
    >>> key
    Secret('**********')
    >>> f"{key}"
    '**********'
    >>> key.get_secret_value()
    'dbc_abc123'
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"a secret must be a str, got {type(value).__name__}")
        self._value = value

    def get_secret_value(self) -> str:
        """The secret itself; pass it straight to where it is needed and nowhere else."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> tuple[Any, ...]:
        # A fresh random pad per pickle keeps the token out of the pickle bytes.
        raw = self._value.encode()
        pad = os.urandom(len(raw))
        return (_unmask, (pad, bytes(a ^ b for a, b in zip(raw, pad, strict=True))))


def _unmask(pad: bytes, masked: bytes) -> Secret:
    return Secret(bytes(a ^ b for a, b in zip(masked, pad, strict=True)).decode())


def secret_value(value: str | SecretLike) -> str:
    """The plain string of a ``str``, a :class:`Secret` or anything with ``get_secret_value()``."""
    getter = getattr(value, "get_secret_value", None)
    return str(getter()) if callable(getter) else str(value)


@dataclass(frozen=True, init=False)
class DbtCloudCredentials:
    """What the executor needs to call the dbt Cloud API for one account.

    Args:
        api_key: A service token or personal access token (``str`` or any secret with
            ``get_secret_value()``); it is stored as a :class:`Secret`.
        account_id: The numeric dbt Cloud account id.
        domain: The account's access URL host: ``cloud.getdbt.com`` (default), a regional host
            such as ``emea.dbt.com`` or a cell/single-tenant host such as
            ``ab123.us1.dbt.com``. A full base URL (``http://127.0.0.1:8766``) is used as given,
            which is how tests point the executor at a local fake.

    Raises:
        ConfigurationError: The key is empty, the account id is not a positive integer or the
            domain is empty.

    Example:
        >>> creds = DbtCloudCredentials(api_key="dbc_abc123", account_id=12345)
        >>> creds  # doctest: +NORMALIZE_WHITESPACE
        DbtCloudCredentials(api_key=Secret('**********'), account_id=12345,
                            domain='cloud.getdbt.com')
        >>> creds.api_base_url
        'https://cloud.getdbt.com/api/v2/accounts/12345'
    """

    api_key: Secret
    account_id: int
    domain: str = DEFAULT_DOMAIN

    def __init__(
        self, api_key: str | SecretLike, account_id: int | str, domain: str = DEFAULT_DOMAIN
    ) -> None:
        key = secret_value(api_key).strip()
        if not key:
            raise ConfigurationError(
                "the dbt Cloud API key is empty: create a service token under Account settings "
                "-> Service tokens and pass it as api_key"
            )
        try:
            account = int(account_id)
        except (TypeError, ValueError):
            account = 0
        if account <= 0:
            raise ConfigurationError(
                f"account_id must be a positive integer, got {account_id!r}: it is the number "
                "after /deploy/ in your dbt Cloud URL"
            )
        host = (domain or "").strip().rstrip("/")
        if not host:
            raise ConfigurationError("domain is empty: use your account's access URL host")
        object.__setattr__(self, "api_key", Secret(key))
        object.__setattr__(self, "account_id", account)
        object.__setattr__(self, "domain", host)

    @classmethod
    def from_any(cls, credentials: Any) -> DbtCloudCredentials:
        """Accept this type or any object with ``api_key``, ``account_id`` and ``domain``.

        That covers a Prefect ``DbtCloudCredentials`` block, whose fields have the same names.
        """
        if isinstance(credentials, cls):
            return credentials
        try:
            api_key = credentials.api_key
            account_id = credentials.account_id
        except AttributeError:
            raise ConfigurationError(
                "credentials need api_key and account_id attributes, got "
                f"{type(credentials).__name__}"
            ) from None
        return cls(api_key, account_id, getattr(credentials, "domain", None) or DEFAULT_DOMAIN)

    @property
    def api_base_url(self) -> str:
        """``https://<domain>/api/v2/accounts/<account_id>``; a full URL keeps its scheme."""
        root = self.domain if "://" in self.domain else f"https://{self.domain}"
        return f"{root}/api/v2/accounts/{self.account_id}"
