"""dbt Cloud credentials as a Prefect block."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr


class DbtCloudCredentials(Block):
    """dbt Cloud API credentials, saved and loaded as a Prefect block.

    Blocks saved by prefect-dbt's ``DbtCloudCredentials`` load here too (same type slug and
    fields). ``DbtCloudExecutor`` accepts this block directly.

    Attributes:
        api_key: A dbt Cloud service token or personal access token (kept secret: it never
            appears in a repr, a log line or an error).
        account_id: The numeric account id.
        domain: ``cloud.getdbt.com``, a regional or single-tenant host, or a full base URL.

    Example:
        >>> creds = DbtCloudCredentials(api_key="secret-token", account_id=12345)
        >>> "secret-token" in repr(creds)
        False
    """

    _block_type_name = "dbt Cloud Credentials"
    _block_type_slug = "dbt-cloud-credentials"
    _description = "Credentials for the dbt Cloud Administrative API."

    api_key: SecretStr = Field(description="dbt Cloud API key or service token.")
    account_id: int = Field(description="dbt Cloud account id.")
    domain: str = Field(default="cloud.getdbt.com", description="dbt Cloud host or base URL.")
