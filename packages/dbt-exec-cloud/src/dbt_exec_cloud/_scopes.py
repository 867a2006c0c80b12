"""Which build owns an ephemeral job, and the sweep that deletes a build's leftovers.

Every ephemeral job is named ``<job_name_prefix>-<owner>-<command>-...`` where ``owner`` is 12
random hex digits: the id of the run scope (one build) the job was created in, or, outside any
scope, of the executor object that created it. At the end of a build the sweep lists the jobs
whose name starts with ``<job_name_prefix>-<owner>-`` and deletes each one still there. Owners
are random, so two builds never share one, and a job not created under that owner (another
build's, or one a person made) never matches the prefix.

Inside a scope, the owner of a new job is found in this order:

1. the innermost scope of this executor entered in the current context (a ``ContextVar``, so
   concurrent builds in threads each find their own; Prefect's thread pool runs tasks in a
   copy of the submitting context);
2. the scope a pickled copy was made in (process pools and Dask ship such copies);
3. otherwise the executor object itself.

When an executor is pickled outside any context that knows the scope (a process pool pickles
in a helper thread), the scope is still found if exactly one is open on that executor.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
from collections.abc import Iterator, Mapping
from contextvars import ContextVar

from dbt_exec_cloud._client import CloudClient
from dbt_exec_cloud._errors import DbtCloudError
from dbt_exec_cloud._jobs import cancel_runs_of, delete_or_warn

logger = logging.getLogger("dbt_exec_cloud")

#: The run scopes entered in the current context, innermost last: (executor family, owner).
_ENTERED: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("dbt_exec_cloud_scopes", default=())


def new_owner() -> str:
    """A fresh random owner id.

    >>> len(new_owner()), new_owner() != new_owner()
    (12, True)
    """
    return secrets.token_hex(6)


def owner_prefix(job_name_prefix: str, owner: str) -> str:
    """The start of the name of every job of ``owner``; it ends with ``-``.

    >>> owner_prefix("prefect-orchestrator", "3f9c2a7e1b04")
    'prefect-orchestrator-3f9c2a7e1b04-'
    """
    return f"{job_name_prefix}-{owner}-"


class Owners:
    """The owners one executor object names its jobs after, and its failed deletions.

    Args:
        family: Shared by an executor and all its pickled copies, so a context entered by one
            is recognised by the others in the same process.
        inherited: The scope a pickled copy was made in, if any.
    """

    def __init__(self, family: str, inherited: str | None = None) -> None:
        self.family = family
        self.inherited = inherited
        #: This object's own owner, for jobs made outside any scope; never shared by a copy,
        #: so closing a copy never sweeps jobs of another.
        self.home = new_owner()
        #: Whether a job was named after :attr:`home` (else closing need not look for any).
        self.home_used = False
        #: Jobs whose deletion failed: id -> name, until a sweep takes them.
        self.undeleted: dict[int, str] = {}
        self._open: list[str] = []
        self._lock = threading.Lock()

    def current(self) -> str:
        """The owner of a job created now."""
        owner = self._entered() or self.inherited
        if owner is None:
            owner, self.home_used = self.home, True
        return owner

    def for_copy(self) -> str | None:
        """The scope a pickled copy made now belongs to, if one is known."""
        found = self._entered() or self.inherited
        if found is None:
            with self._lock:
                found = self._open[0] if len(self._open) == 1 else None
        return found

    def note_undeleted(self, job_id: int, name: str) -> None:
        """Remember a job whose deletion failed, for the next sweep of its owner."""
        with self._lock:
            self.undeleted[job_id] = name

    def take_undeleted(self, prefix: str | None = None) -> dict[int, str]:
        """Forget and return the failed deletions (of names starting with ``prefix``)."""
        with self._lock:
            taken = {
                job_id: name
                for job_id, name in self.undeleted.items()
                if prefix is None or name.startswith(prefix)
            }
            for job_id in taken:
                del self.undeleted[job_id]
        return taken

    @contextlib.contextmanager
    def scope(self) -> Iterator[str]:
        """Enter a new scope in the current context; yields its owner id."""
        owner = new_owner()
        with self._lock:
            self._open.append(owner)
        token = _ENTERED.set((*_ENTERED.get(), (self.family, owner)))
        try:
            yield owner
        finally:
            with contextlib.suppress(ValueError):  # left in another context than entered in
                _ENTERED.reset(token)
            with self._lock:
                self._open.remove(owner)

    def _entered(self) -> str | None:
        for family, owner in reversed(_ENTERED.get()):
            if family == self.family:
                return owner
        return None


def sweep(
    client: CloudClient,
    *,
    prefix: str,
    project_id: int,
    environment_id: int,
    known: Mapping[int, str] | None = None,
    what: str = "build",
) -> list[int]:
    """Delete every job whose name starts with ``prefix`` that is still there.

    Runs a leftover job still has are cancelled first. A deletion that fails within its
    retries is reported as a :class:`~dbt_exec_cloud.JobNotDeletedWarning`. The number of
    leftovers deleted is logged (INFO when 0, WARNING otherwise).

    Args:
        client: The API client.
        prefix: An owner's name prefix (:func:`owner_prefix`).
        project_id: Only jobs of this project are considered.
        environment_id: Only jobs of this environment are considered.
        known: Ids and names of jobs whose deletion failed earlier; deleted too (also when
            listing fails).
        what: What the prefix belongs to, for the log line (``build`` or ``executor``).

    Returns:
        The ids of the leftover jobs deleted (empty in a healthy build).
    """
    leftovers = dict(known or {})
    try:
        listed = client.list_jobs(
            name_prefix=prefix, project_id=project_id, environment_id=environment_id
        )
    except DbtCloudError as exc:
        logger.warning(
            "Could not list the dbt Cloud jobs named %s* of account %s to delete leftovers "
            "(%s); check Deploy -> Jobs for them.",
            prefix,
            client.credentials.account_id,
            exc,
        )
    else:
        leftovers.update((job.id, job.name) for job in listed)
    deleted = []
    for job_id, name in sorted(leftovers.items()):
        cancel_runs_of(client, job_id)
        if delete_or_warn(client, job_id, name, then="Delete it under Deploy -> Jobs."):
            deleted.append(job_id)
    logger.log(
        logging.WARNING if deleted else logging.INFO,
        "dbt Cloud sweep of %s jobs %s* in account %s: deleted %d leftover job(s)%s",
        what,
        prefix,
        client.credentials.account_id,
        len(deleted),
        f" {deleted}" if deleted else "",
    )
    return deleted
