"""dbt Cloud jobs and runs as frozen values, and the pydantic edge that reads them.

dbt Cloud wraps every answer in an envelope ``{"status": {...}, "data": ..., "extra": ...}``.
Pydantic validates the parts this package reads and ignores the rest, so new fields on the
service side change nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from dbt_exec_cloud._errors import ResponseError

_M = TypeVar("_M", bound=BaseModel)


class RunStatus(IntEnum):
    """A dbt Cloud run's ``status`` code.

    >>> RunStatus(20).is_terminal, RunStatus.RUNNING.is_terminal
    (True, False)
    """

    QUEUED = 1
    STARTING = 2
    RUNNING = 3
    SUCCESS = 10
    ERROR = 20
    CANCELLED = 30

    @property
    def is_terminal(self) -> bool:
        """Whether the run has finished (success, error or cancelled)."""
        return self >= RunStatus.SUCCESS

    @property
    def label(self) -> str:
        """The lower-case name, e.g. ``error``."""
        return self.name.lower()


@dataclass(frozen=True, kw_only=True)
class Job:
    """A dbt Cloud job definition, as far as this package uses it.

    Attributes:
        id: The job id.
        name: Its name (ephemeral jobs carry a unique random suffix).
        project_id: The project it belongs to.
        environment_id: The environment it runs in.
        execute_steps: Its dbt commands.
    """

    id: int
    name: str
    project_id: int | None = None
    environment_id: int | None = None
    execute_steps: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Run:
    """A dbt Cloud run, as far as this package uses it.

    Attributes:
        id: The run id.
        status: Its status code.
        job_id: The job it is a run of.
        status_message: dbt Cloud's explanation of a failure, if any.
        href: The run's page in the dbt Cloud UI.
    """

    id: int
    status: RunStatus
    job_id: int | None = None
    status_message: str | None = None
    href: str | None = None


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Status(_Lenient):
    code: int | None = None
    is_success: bool | None = None
    user_message: str | None = None
    developer_message: str | None = None


class _Envelope(_Lenient):
    status: _Status | None = None
    data: Any = None
    extra: dict[str, Any] | None = None


class _RawJob(_Lenient):
    id: int
    name: str = ""
    project_id: int | None = None
    environment_id: int | None = None
    execute_steps: list[str] | None = None


class _RawRun(_Lenient):
    id: int
    status: RunStatus
    job_definition_id: int | None = None
    job_id: int | None = None
    status_message: str | None = None
    href: str | None = None


def _validate(model: type[_M], raw: Any, what: str) -> _M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ResponseError(
            f"dbt Cloud returned an unexpected {what}: {first['msg']} at {where}. The API may "
            "have changed; upgrade dbt-exec-cloud or report the payload."
        ) from None


def envelope(payload: Any, what: str) -> tuple[Any, dict[str, Any]]:
    """Split a decoded response body into ``data`` and ``extra``.

    Raises:
        ResponseError: The body is not an envelope.
    """
    env = _validate(_Envelope, payload, what)
    return env.data, env.extra or {}


def user_message(payload: Any) -> str | None:
    """dbt Cloud's ``status.user_message`` from an error body, if it has one."""
    try:
        env = _Envelope.model_validate(payload)
    except ValidationError:
        return None
    return env.status.user_message if env.status else None


def parse_job(data: Any) -> Job:
    """A :class:`Job` from a job object (``data`` of create/get, an item of a list)."""
    raw = _validate(_RawJob, data, "job")
    return Job(
        id=raw.id,
        name=raw.name,
        project_id=raw.project_id,
        environment_id=raw.environment_id,
        execute_steps=tuple(raw.execute_steps or ()),
    )


def parse_run(data: Any) -> Run:
    """A :class:`Run` from a run object (``data`` of trigger/get/cancel, an item of a list)."""
    raw = _validate(_RawRun, data, "run")
    return Run(
        id=raw.id,
        status=raw.status,
        job_id=raw.job_definition_id if raw.job_definition_id is not None else raw.job_id,
        status_message=raw.status_message or None,
        href=raw.href or None,
    )
