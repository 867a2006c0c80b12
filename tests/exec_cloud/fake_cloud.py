"""A small stateful fake of the dbt Cloud Administrative API v2, served through respx.

It follows /work/shared/spec/dbt-cloud-api.md: envelopes, status codes, the required ``cause``,
job validation, run statuses 1/2/3 -> 10/20/30, artifacts of the last step, 401/404 bodies.
Runs progress one status per poll. A run's run_results.json is built from the nodes its step
really selects (a mini version of dbt's selector methods over the real shop manifest) and a
scripted outcome per node, with dbt's skip rule for nodes downstream of a failure.

Faults are scripted per route with :meth:`FakeDbtCloud.fail`; a fault may act first and then
lose the answer (``after_acting=True``), which is how lost create responses are simulated.
:meth:`FakeDbtCloud.chaos` adds seeded random faults on every call, as a fault-injecting
emulator does. Lists (jobs and runs) are paginated with ``limit``/``offset`` as the real API.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import re
import shlex
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import respx
from dbt_graph import Manifest, Node, ResourceType, load_manifest

HOST = "cloud.fake-dbt.test"
TOKEN = "dbc_fake-token-4f9c-2a7e-1b"
ACCOUNT = 1
PROJECT = 10
ENVIRONMENT = 20
PRODUCTION_JOB = 777

_ACCOUNT_PATH = r"^/api/v2/accounts/(?P<account>\d+)"
_IDS = re.compile(r"/\d+")
_TERMINAL = {10, 20, 30}
_HUMAN = {1: "Queued", 2: "Starting", 3: "Running", 10: "Success", 20: "Error", 30: "Cancelled"}
_FAILING = {"error", "fail", "runtime error", "partial success"}
#: The statuses that leave open whether the service acted (see dbt_exec_cloud._http_errors).
UNCONFIRMED_STATUSES = (408, 409, 425, 429, 500, 502, 503, 504)


@dataclass
class Fault:
    """One scripted failure of one request.

    Attributes:
        status: Answer with this HTTP status (and an error envelope) instead of the real answer.
        error: Raise this httpx transport error instead of answering.
        headers: Extra response headers, e.g. ``{"Retry-After": "7"}``.
        after_acting: Carry the request out first, then fail (the server acted, the answer
            was lost).
    """

    status: int | None = None
    error: Exception | None = None
    headers: dict[str, str] = field(default_factory=dict)
    after_acting: bool = False


@dataclass(frozen=True)
class Call:
    """A request the fake received: method, path below the account, query and JSON body."""

    method: str
    path: str
    params: dict[str, str]
    body: Any

    @property
    def route(self) -> str:
        """``POST /jobs/{id}/run/``-style name, ids replaced."""
        return f"{self.method} {_IDS.sub('/{id}', self.path)}"


def _envelope(data: Any, code: int = 200, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "status": {
            "code": code,
            "is_success": True,
            "user_message": "Success!",
            "developer_message": "",
        },
        "data": data,
    }
    if extra is not None:
        out["extra"] = extra
    return out


def _error(
    code: int, message: str, data: Any = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {
        "status": {
            "code": code,
            "is_success": False,
            "user_message": message,
            "developer_message": "",
        },
        "data": data,
    }
    return httpx.Response(code, json=body, headers=headers)


_MESSAGES = {
    401: "Invalid token.",
    404: "The requested resource was not found. Please check that you have the proper permissions.",
    429: "Too many requests.",
    500: "There was a server error. Please contact support at support@getdbt.com.",
}


class FakeDbtCloud:
    """The fake service.

    Args:
        manifest_path: The shop project's manifest.json, served as the compile/job artifact and
            used to evaluate selectors.
        outcomes: Status per unique_id (dbt's strings); others succeed (tests ``pass``).
        polls_until_done: Status polls a run answers with a non-terminal status; negative: the
            trigger's answer is already terminal (so executors never wait a poll interval).
    """

    def __init__(
        self,
        manifest_path: Path,
        *,
        outcomes: dict[str, str] | None = None,
        polls_until_done: int = 2,
        project_id: int = PROJECT,
        environment_id: int = ENVIRONMENT,
    ) -> None:
        self.project_id = project_id
        self.environment_id = environment_id
        self.manifest_bytes = manifest_path.read_bytes()
        self.manifest: Manifest = load_manifest(manifest_path)
        self.outcomes: dict[str, str] = dict(outcomes or {})
        self.freshness: dict[str, str] = {}
        self.polls_until_done = polls_until_done
        self.never_finish = False
        self.run_status_message: str | None = None
        self.force_status: int | None = None
        self.omit_artifacts = False
        self.unreported: set[str] = set()
        self.jobs: dict[int, dict[str, Any]] = {}
        self.runs: dict[int, dict[str, Any]] = {}
        self.run_artifacts: dict[int, dict[str, bytes]] = {}
        self.job_manifests: dict[int, bytes] = {}
        self.calls: list[Call] = []
        self.on_request: Callable[[Call], None] | None = None
        self.injected: list[tuple[str, Fault]] = []
        self._faults: list[tuple[str, re.Pattern[str], list[Fault]]] = []
        self._chaos: tuple[random.Random, float] | None = None
        self._interrupt_at: int | None = None
        self._ids = itertools.count(1001)
        self._lock = threading.RLock()
        self.router = self._build_router()

    # Test-facing helpers --------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        """A transport to inject into the executor or client."""
        return httpx.MockTransport(self.router.handler)

    def fail(self, method: str, path_regex: str, *faults: Fault) -> None:
        """Script ``faults`` for the next requests matching ``method`` and ``path_regex``.

        ``path_regex`` is matched against the path below ``/api/v2/accounts/<id>``.
        """
        self._faults.append((method, re.compile(path_regex), list(faults)))

    def chaos(self, rng: random.Random, rate: float, *, interrupt_at: int | None = None) -> None:
        """From now on fail a random ``rate`` of all requests (scripted faults go first).

        A random fault is one of :data:`UNCONFIRMED_STATUSES`, a read timeout or a dropped
        connection (each before or after acting, at random), or a refused connection (never
        acted). With ``interrupt_at``, the request with that number (counted from now, from 1)
        raises ``KeyboardInterrupt`` instead, before or after acting.
        """
        with self._lock:
            self._chaos = (rng, rate)
            self._interrupt_at = None if interrupt_at is None else len(self.calls) + interrupt_at

    def add_job(
        self, name: str, *, project_id: int | None = None, environment_id: int | None = None
    ) -> int:
        """A job someone else created (or a leftover), straight into the account."""
        with self._lock:
            job_id = next(self._ids)
            job = self._job_json(job_id, {"name": name, "execute_steps": ["dbt run"]})
            job["project_id"] = project_id or self.project_id
            job["environment_id"] = environment_id or self.environment_id
            self.jobs[job_id] = job
            return job_id

    def add_production_job(
        self, job_id: int = PRODUCTION_JOB, *, manifest: bytes | None = None
    ) -> None:
        """A long-lived job whose latest successful run has a manifest.json."""
        with self._lock:
            self.jobs[job_id] = self._job_json(
                job_id, {"name": "production", "execute_steps": ["dbt build"]}
            )
            self.job_manifests[job_id] = manifest or self.manifest_bytes

    def active_jobs(self) -> list[dict[str, Any]]:
        """Jobs not deleted, the production job excepted."""
        return [
            j for j in self.jobs.values() if j["state"] == 1 and j["id"] not in self.job_manifests
        ]

    def routes(self) -> list[str]:
        """Every request's route name, in order."""
        return [c.route for c in self.calls]

    def reported(self) -> list[list[str]]:
        """For every run, in order, the unique_ids its run_results.json holds."""
        out = []
        for run_id in sorted(self.run_artifacts):
            content = self.run_artifacts[run_id].get("run_results.json")
            results = json.loads(content)["results"] if content else []
            out.append([r["unique_id"] for r in results])
        return out

    def steps(self) -> list[str]:
        """The execute_steps of every job created, in order."""
        return [c.body["execute_steps"][0] for c in self.calls if c.route == "POST /jobs/"]

    # Routing ------------------------------------------------------------------------------

    def _build_router(self) -> respx.MockRouter:
        router = respx.MockRouter(assert_all_called=False, assert_all_mocked=True)
        table: list[tuple[str, str, Callable[..., httpx.Response]]] = [
            ("POST", r"/jobs/$", self._create_job),
            ("GET", r"/jobs/$", self._list_jobs),
            ("DELETE", r"/jobs/(?P<job_id>\d+)/?$", self._delete_job),
            ("POST", r"/jobs/(?P<job_id>\d+)/run/?$", self._trigger),
            ("GET", r"/jobs/(?P<job_id>\d+)/artifacts/(?P<path>.+)$", self._job_artifact),
            ("GET", r"/runs/$", self._list_runs),
            ("GET", r"/runs/(?P<run_id>\d+)/?$", self._get_run),
            ("POST", r"/runs/(?P<run_id>\d+)/cancel/?$", self._cancel),
            ("GET", r"/runs/(?P<run_id>\d+)/artifacts/(?P<path>.+)$", self._run_artifact),
        ]
        for method, pattern, handler in table:
            router.route(method=method, path__regex=_ACCOUNT_PATH + pattern).mock(
                side_effect=self._wrap(handler)
            )
        router.route().mock(side_effect=lambda request: _error(404, _MESSAGES[404]))
        return router

    def _wrap(self, handler: Callable[..., httpx.Response]) -> Callable[..., httpx.Response]:
        def respond(request: httpx.Request, account: str, **kw: str) -> httpx.Response:
            body = json.loads(request.content) if request.content else None
            path = re.sub(_ACCOUNT_PATH, "", request.url.path)
            call = Call(request.method, path, dict(request.url.params), body)
            with self._lock:
                self.calls.append(call)
            if self.on_request is not None:
                self.on_request(call)
            auth = request.headers.get("Authorization", "")
            if auth not in (f"Bearer {TOKEN}", f"Token {TOKEN}"):
                return _error(401, _MESSAGES[401])
            if int(account) != ACCOUNT:
                return _error(404, _MESSAGES[404])
            fault = self._next_fault(request.method, path)
            if fault is None:
                return self._call(handler, body, request, kw)
            if fault.after_acting:
                self._call(handler, body, request, kw)
            if fault.error is not None:
                raise fault.error
            assert fault.status is not None
            return _error(fault.status, _MESSAGES.get(fault.status, "Error"), headers=fault.headers)

        return respond

    def _call(
        self,
        handler: Callable[..., httpx.Response],
        body: Any,
        request: httpx.Request,
        kw: dict[str, str],
    ) -> httpx.Response:
        with self._lock:
            return handler(body=body, params=request.url.params, **kw)

    def _next_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            fault = None
            for m, pattern, queue in self._faults:
                if m == method and pattern.search(path) and queue:
                    fault = queue.pop(0)
                    break
            if fault is None:
                fault = self._random_fault()
            if fault is not None:
                self.injected.append((f"{method} {_IDS.sub('/{id}', path)}", fault))
            return fault

    def _random_fault(self) -> Fault | None:
        if self._chaos is None:
            return None
        rng, rate = self._chaos
        acted = rng.random() < 0.5
        if self._interrupt_at is not None and len(self.calls) == self._interrupt_at:
            return Fault(error=KeyboardInterrupt(), after_acting=acted)
        if rng.random() >= rate:
            return None
        kinds = len(UNCONFIRMED_STATUSES)
        pick = rng.randrange(kinds + 3)
        if pick < kinds:
            return Fault(status=UNCONFIRMED_STATUSES[pick], after_acting=acted)
        if pick == kinds:
            return Fault(error=httpx.ReadTimeout("read timed out"), after_acting=acted)
        if pick == kinds + 1:
            return Fault(error=httpx.RemoteProtocolError("connection dropped"), after_acting=acted)
        return Fault(error=httpx.ConnectError("connection refused"))

    # Jobs ---------------------------------------------------------------------------------

    def _job_json(self, job_id: int, body: dict[str, Any]) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat()
        return {
            "id": job_id,
            "account_id": ACCOUNT,
            "project_id": self.project_id,
            "environment_id": self.environment_id,
            "name": body["name"],
            "execute_steps": body.get("execute_steps", []),
            "settings": body.get("settings") or {"threads": 4, "target_name": "default"},
            "execution": {"timeout_seconds": 0},
            "state": 1,
            "job_type": "other",
            "deferring_job_definition_id": None,
            "created_at": now,
            "updated_at": now,
        }

    def _create_job(self, *, body: Any, params: Any) -> httpx.Response:
        invalid = {}
        for key in ("project_id", "environment_id", "name"):
            if not body or not body.get(key):
                invalid[key] = "This field is required."
        if body and body.get("account_id") not in (None, ACCOUNT):
            invalid["account_id"] = "Does not match the account in the URL."
        for step in (body or {}).get("execute_steps") or []:
            if not step.startswith("dbt "):
                invalid["execute_steps"] = f"{step!r} is not a dbt command."
        if invalid:
            return _error(
                400,
                "The request was invalid. Please double check the provided data and try again.",
                data=invalid,
            )
        if body["project_id"] != self.project_id or body["environment_id"] != self.environment_id:
            return _error(404, _MESSAGES[404])
        job_id = next(self._ids)
        self.jobs[job_id] = self._job_json(job_id, body)
        return httpx.Response(201, json=_envelope(self.jobs[job_id], 201))

    def _list_jobs(self, *, body: Any, params: Any) -> httpx.Response:
        jobs = [j for j in self.jobs.values() if j["state"] == 1]
        if "project_id" in params:
            jobs = [j for j in jobs if j["project_id"] == int(params["project_id"])]
        if "environment_id" in params:
            jobs = [j for j in jobs if j["environment_id"] == int(params["environment_id"])]
        if "name__icontains" in params:
            jobs = [j for j in jobs if params["name__icontains"].lower() in j["name"].lower()]
        jobs.sort(key=lambda j: -j["id"] if params.get("order_by") == "-id" else j["id"])
        limit = min(int(params.get("limit", 100)), 100)
        offset = int(params.get("offset", 0))
        page = jobs[offset : offset + limit]
        extra = {
            "filters": {"limit": limit, "offset": offset, "account_id": ACCOUNT},
            "order_by": params.get("order_by", "id"),
            "pagination": {"count": len(page), "total_count": len(jobs)},
        }
        return httpx.Response(200, json=_envelope(page, extra=extra))

    def _delete_job(self, *, body: Any, params: Any, job_id: str) -> httpx.Response:
        job = self.jobs.get(int(job_id))
        if job is None or job["state"] != 1:
            return _error(404, _MESSAGES[404])
        job["state"] = 2
        return httpx.Response(200, json=_envelope(job))

    def _job_artifact(self, *, body: Any, params: Any, job_id: str, path: str) -> httpx.Response:
        content = self.job_manifests.get(int(job_id)) if path == "manifest.json" else None
        if content is None:
            return _error(404, _MESSAGES[404])
        return httpx.Response(200, content=content, headers={"Content-Type": "application/json"})

    # Runs ---------------------------------------------------------------------------------

    def _run_json(self, run: dict[str, Any]) -> dict[str, Any]:
        status = run["status"]
        return {
            "id": run["id"],
            "trigger_id": run["id"],
            "account_id": ACCOUNT,
            "environment_id": self.environment_id,
            "project_id": self.project_id,
            "job_definition_id": run["job_id"],
            "status": status,
            "status_humanized": _HUMAN[status],
            "status_message": run.get("status_message"),
            "in_progress": status not in _TERMINAL,
            "is_complete": status in _TERMINAL,
            "is_success": status == 10,
            "is_error": status == 20,
            "is_cancelled": status == 30,
            "href": f"https://{HOST}/deploy/{ACCOUNT}/projects/{PROJECT}/runs/{run['id']}/",
            "created_at": str(datetime.now(UTC)),
            "trigger": None,
            "job": None,
            "environment": None,
            "run_steps": [],
        }

    def _trigger(self, *, body: Any, params: Any, job_id: str) -> httpx.Response:
        job = self.jobs.get(int(job_id))
        if job is None or job["state"] != 1:
            return _error(404, _MESSAGES[404])
        if not body or not body.get("cause"):
            return _error(
                400, "The request was invalid.", data={"cause": "This field is required."}
            )
        run_id = next(self._ids)
        final, artifacts, message = self._execute(job["execute_steps"][0])
        if self.force_status is not None:
            final = self.force_status
        if self.omit_artifacts:
            artifacts = {}
        instant = self.polls_until_done < 0  # a run already finished when the trigger answers
        self.runs[run_id] = {
            "id": run_id,
            "job_id": job["id"],
            "status": final if instant else 1,
            "polls": 0,
            "final": final,
            "status_message": None,
            "final_message": self.run_status_message or message,
            "cause": body["cause"],
        }
        self.run_artifacts[run_id] = artifacts
        return httpx.Response(200, json=_envelope(self._run_json(self.runs[run_id])))

    def _list_runs(self, *, body: Any, params: Any) -> httpx.Response:
        runs = list(self.runs.values())
        if "job_definition_id" in params:
            runs = [r for r in runs if r["job_id"] == int(params["job_definition_id"])]
        runs.sort(key=lambda r: -r["id"] if params.get("order_by") == "-id" else r["id"])
        limit = min(int(params.get("limit", 100)), 100)
        offset = int(params.get("offset", 0))
        page = [self._run_json(r) for r in runs[offset : offset + limit]]
        extra = {
            "filters": {"limit": limit, "offset": offset, "account_id": ACCOUNT},
            "pagination": {"count": len(page), "total_count": len(runs)},
        }
        return httpx.Response(200, json=_envelope(page, extra=extra))

    def _get_run(self, *, body: Any, params: Any, run_id: str) -> httpx.Response:
        run = self.runs.get(int(run_id))
        if run is None:
            return _error(404, _MESSAGES[404])
        if run["status"] not in _TERMINAL:
            run["polls"] += 1
            if self.never_finish or run["polls"] < self.polls_until_done:
                run["status"] = 2 if run["polls"] == 1 else 3
            else:
                run["status"] = run["final"]
                run["status_message"] = run["final_message"]
        return httpx.Response(200, json=_envelope(self._run_json(run)))

    def _cancel(self, *, body: Any, params: Any, run_id: str) -> httpx.Response:
        run = self.runs.get(int(run_id))
        if run is None:
            return _error(404, _MESSAGES[404])
        if run["status"] not in _TERMINAL:
            run["status"] = 30
            run["status_message"] = "Cancelled via the API"
            self.run_artifacts[run["id"]] = {}
        return httpx.Response(200, json=_envelope(self._run_json(run)))

    def _run_artifact(self, *, body: Any, params: Any, run_id: str, path: str) -> httpx.Response:
        run = self.runs.get(int(run_id))
        if run is None or run["status"] not in _TERMINAL:
            return _error(404, _MESSAGES[404])
        content = self.run_artifacts.get(run["id"], {}).get(path)
        if content is None:
            return _error(404, _MESSAGES[404])
        return httpx.Response(200, content=content, headers={"Content-Type": "application/json"})

    # What a step does ---------------------------------------------------------------------

    def _execute(self, step: str) -> tuple[int, dict[str, bytes], str | None]:
        tokens = shlex.split(step)
        command = tokens[1]
        if command == "source":
            command = "source freshness"
        selectors = _flag_values(tokens, "--select")
        try:
            selected = self._select(selectors) if selectors else list(self.manifest.nodes.values())
        except ValueError as exc:
            return 20, {}, f"Runtime Error: {exc}"
        indirect = (_flag_values(tokens, "--indirect-selection") or ["eager"])[0]
        if command in ("build", "test") and indirect == "eager":
            selected += self._tests_of(selected)
        if command == "compile":
            return 10, {"manifest.json": self.manifest_bytes}, None
        if command == "source freshness":
            content, stale = self._sources_json(selected)
            return (20 if stale else 10), {"sources.json": content}, None
        results = self._results(selected)
        failed = any(r["status"] in _FAILING for r in results)
        content = json.dumps(
            {
                "metadata": {
                    "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json"
                },
                "results": results,
                "elapsed_time": 1.0,
            }
        ).encode()
        return (20 if failed else 10), {"run_results.json": content}, None

    def _select(self, selectors: Iterable[str]) -> list[Node]:
        chosen: dict[str, Node] = {}
        for selector in selectors:
            matched = None
            for part in selector.split(","):
                hits = {n.unique_id for n in self.manifest.nodes.values() if _matches(part, n)}
                matched = hits if matched is None else matched & hits
            for uid in sorted(matched or ()):
                chosen[uid] = self.manifest.nodes[uid]
        return [
            n
            for n in chosen.values()
            if n.resource_type not in (ResourceType.EXPOSURE, ResourceType.ANALYSIS)
        ]

    def _tests_of(self, nodes: list[Node]) -> list[Node]:
        """dbt's eager indirect selection: the tests of selected nodes join the selection."""
        chosen = {n.unique_id for n in nodes}
        return [
            n
            for n in self.manifest.nodes.values()
            if n.is_test and n.unique_id not in chosen and chosen & set(n.depends_on)
        ]

    def _results(self, nodes: list[Node]) -> list[dict[str, Any]]:
        selected = {n.unique_id for n in nodes}
        parents = self.manifest.parent_map
        status_of: dict[str, str] = {}
        out = []
        start = datetime.now(UTC)
        for node in _topological(nodes, parents):
            uid = node.unique_id
            if node.resource_type is ResourceType.SOURCE or uid in self.unreported:
                continue
            if _upstream_failed(uid, parents, selected, status_of):
                status = "skipped"
            else:
                status = self.outcomes.get(uid) or ("pass" if node.is_test else "success")
            status_of[uid] = status
            t0 = start + timedelta(seconds=len(out))
            timing = (
                []
                if status == "skipped"
                else [
                    {
                        "name": "compile",
                        "started_at": t0.isoformat().replace("+00:00", "Z"),
                        "completed_at": (t0 + timedelta(seconds=0.2)).isoformat(),
                    },
                    {
                        "name": "execute",
                        "started_at": (t0 + timedelta(seconds=0.2)).isoformat(),
                        "completed_at": (t0 + timedelta(seconds=0.9)).isoformat(),
                    },
                ]
            )
            failures = {"fail": 3, "warn": 2, "pass": 0}.get(status) if node.is_test else None
            out.append(
                {
                    "unique_id": uid,
                    "status": status,
                    "thread_id": "Thread-1",
                    "execution_time": 0.0 if status == "skipped" else 0.9,
                    "timing": timing,
                    "message": _message(node, status, failures),
                    "adapter_response": {}
                    if status == "skipped"
                    else {"_message": "OK", "rows_affected": 1},
                    "failures": failures,
                    "compiled": True,
                    "compiled_code": f"select * from {node.name}",
                    "relation_name": node.relation_name,
                }
            )
        return out

    def _sources_json(self, nodes: list[Node]) -> tuple[bytes, bool]:
        now = datetime.now(UTC)
        results, stale = [], False
        for node in nodes:
            if node.resource_type is not ResourceType.SOURCE:
                continue
            if node.freshness_warn_after is None and node.freshness_error_after is None:
                continue
            status = self.freshness.get(node.unique_id, "pass")
            stale = stale or status in ("error", "runtime error")
            if status == "runtime error":
                results.append(
                    {
                        "unique_id": node.unique_id,
                        "status": status,
                        "error": "Database Error: relation does not exist",
                    }
                )
                continue

            def crit(t: Any) -> dict[str, Any]:
                return (
                    {"count": t.count, "period": t.period} if t else {"count": None, "period": None}
                )

            results.append(
                {
                    "unique_id": node.unique_id,
                    "status": status,
                    "max_loaded_at": (now - timedelta(hours=5)).isoformat(),
                    "snapshotted_at": now.isoformat(),
                    "max_loaded_at_time_ago_in_s": 18000.0,
                    "criteria": {
                        "warn_after": crit(node.freshness_warn_after),
                        "error_after": crit(node.freshness_error_after),
                        "filter": None,
                    },
                    "adapter_response": {},
                    "timing": [],
                    "thread_id": "Thread-1",
                    "execution_time": 0.1,
                }
            )
        body = {
            "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/sources/v3.json"},
            "results": results,
            "elapsed_time": 0.5,
        }
        return json.dumps(body).encode(), stale


def _flag_values(tokens: list[str], flag: str) -> list[str]:
    if flag not in tokens:
        return []
    values = []
    for token in tokens[tokens.index(flag) + 1 :]:
        if token.startswith("--"):
            break
        values.append(token)
    return values


def _matches(part: str, node: Node) -> bool:
    method, _, value = part.rpartition(":")
    method = method or "fqn"
    if method == "fqn":
        wanted = value.split(".")
        return node.fqn[-1:] == tuple(wanted) or tuple(node.fqn[: len(wanted)]) == tuple(wanted)
    if method == "resource_type":
        return node.resource_type == value
    if method == "unique_id":
        return node.unique_id == value
    if method == "path":
        return node.original_file_path == value or node.original_file_path.startswith(
            value.rstrip("/") + "/"
        )
    if method == "package":
        return node.package_name == value
    if method == "file":
        name = node.original_file_path.rsplit("/", 1)[-1]
        return value in (name, name.rsplit(".", 1)[0])
    if method == "tag":
        return value in node.tags
    if method == "source":
        if node.resource_type is not ResourceType.SOURCE:
            return False
        full = (node.package_name, node.source_name, node.name)
        wanted = tuple(value.split("."))
        return (
            full[-len(wanted) :] == wanted
            if len(wanted) == 3
            else full[1 : 1 + len(wanted)] == wanted
        )
    raise ValueError(f"'{method}' is not a valid method name")


def _topological(nodes: list[Node], parents: Any) -> list[Node]:
    ids = {n.unique_id: n for n in nodes}
    done: set[str] = set()
    out: list[Node] = []

    def visit(uid: str) -> None:
        if uid in done:
            return
        done.add(uid)
        for p in parents.get(uid, ()):
            if p in ids:
                visit(p)
        out.append(ids[uid])

    for uid in ids:
        visit(uid)
    return out


def _upstream_failed(uid: str, parents: Any, selected: set[str], status_of: dict[str, str]) -> bool:
    stack, seen = list(parents.get(uid, ())), set()
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        if p in selected and (status_of.get(p) in _FAILING or status_of.get(p) == "skipped"):
            return True
        stack.extend(parents.get(p, ()))
    return False


def _message(node: Node, status: str, failures: int | None) -> str | None:
    if status == "success":
        return "OK" if node.resource_type is not ResourceType.SEED else "INSERT 3"
    if status == "pass":
        return None
    if status in ("fail", "warn"):
        verb = "fail" if status == "fail" else "warn"
        return f"Got {failures} results, configured to {verb} if != 0"
    if status == "skipped":
        return None
    return (
        f"Database Error in {node.resource_type} {node.name} ({node.original_file_path})\n"
        "  Catalog Error: Table with name missing_table does not exist!"
    )


@contextlib.contextmanager
def serve_over_socket(fake: FakeDbtCloud) -> Iterator[str]:
    """Serve ``fake`` on a real loopback socket and yield its base URL.

    Worker processes (process pools, Dask) cannot reach respx mocks in the test process; they
    can reach this.
    """

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = httpx.Request(
                self.command,
                f"https://{HOST}{self.path}",
                headers=dict(self.headers.items()),
                content=self.rfile.read(length) if length else b"",
            )
            response = fake.router.handler(request)
            body = response.read()
            self.send_response(response.status_code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
