"""CloudClient: retries, backoff, Retry-After, budgets, error translation, wire details."""

from __future__ import annotations

import httpx
import pytest
import respx
from dbt_exec_cloud import (
    AuthenticationError,
    CloudClient,
    CloudConnectionError,
    DbtCloudCredentials,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseError,
    RetryPolicy,
    RunStatus,
    ServerError,
    TransientError,
)
from exec_cloud.fake_cloud import ENVIRONMENT, HOST, PROJECT, TOKEN, FakeDbtCloud, Fault

BASE = f"https://{HOST}/api/v2/accounts/1"


@pytest.fixture
def client(credentials, fake: FakeDbtCloud, fake_time) -> CloudClient:
    with CloudClient(
        credentials,
        retry=RetryPolicy(jitter=0.0),
        transport=fake.transport(),
        sleep=fake_time.sleep,
    ) as built:
        yield built


def make_job(client: CloudClient, name: str = "prefect-orchestrator-run-x-abc") -> int:
    return client.create_job(
        project_id=PROJECT, environment_id=ENVIRONMENT, name=name, execute_steps=["dbt run"]
    ).id


def test_every_request_carries_bearer_auth_and_a_user_agent(credentials) -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": {"code": 200}, "data": []})

    with CloudClient(credentials, transport=httpx.MockTransport(record)) as client:
        client.list_runs(job_id=5)
    (sent,) = seen
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["User-Agent"].startswith("dbt-exec-cloud")
    assert str(sent.url).startswith(f"{BASE}/runs/?")
    assert sent.url.params["job_definition_id"] == "5"


def test_every_request_has_the_policy_timeout(credentials) -> None:
    timeouts = []

    def record(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"])
        return httpx.Response(200, json={"data": []})

    policy = RetryPolicy(request_timeout=3.5)
    with CloudClient(credentials, retry=policy, transport=httpx.MockTransport(record)) as client:
        client.list_runs(job_id=1)
    assert timeouts == [{"connect": 3.5, "read": 3.5, "write": 3.5, "pool": 3.5}]


def test_a_full_base_url_domain_is_used_as_given() -> None:
    creds = DbtCloudCredentials(api_key=TOKEN, account_id=7, domain="http://127.0.0.1:8766/")
    with respx.mock(assert_all_called=True) as router:
        route = router.get("http://127.0.0.1:8766/api/v2/accounts/7/runs/3/").respond(
            json={"data": {"id": 3, "status": 10}}
        )
        with CloudClient(creds) as client:
            assert client.get_run(3).status is RunStatus.SUCCESS
    assert route.called


def test_create_trigger_cancel_and_delete_round_trip(client: CloudClient, fake) -> None:
    job = client.create_job(
        project_id=PROJECT,
        environment_id=ENVIRONMENT,
        name="n1",
        execute_steps=["dbt run"],
        settings={"threads": 2, "target_name": "ci"},
    )
    assert job.name == "n1" and job.execute_steps == ("dbt run",)
    run = client.trigger_run(job.id, cause="x" * 300)
    assert run.status is RunStatus.QUEUED and run.job_id == job.id
    assert fake.calls[-1].body == {"cause": "x" * 255}
    assert client.cancel_run(run.id).status is RunStatus.CANCELLED
    client.delete_job(job.id)
    client.delete_job(job.id)  # already gone: not an error
    assert fake.active_jobs() == []


def test_429_waits_what_retry_after_says(client: CloudClient, fake, fake_time) -> None:
    fake.fail("GET", r"^/runs/$", Fault(status=429, headers={"Retry-After": "7"}))
    assert client.list_runs(job_id=1) == ()
    assert fake_time.sleeps == [7.0]


def test_429_without_retry_after_backs_off(client: CloudClient, fake, fake_time) -> None:
    fake.fail("GET", r"^/runs/$", Fault(status=429), Fault(status=429))
    client.list_runs(job_id=1)
    assert fake_time.sleeps == [1.0, 2.0]


def test_429_that_never_ends_raises_rate_limit_error(credentials, fake, fake_time) -> None:
    fake.fail("GET", r"^/runs/$", *[Fault(status=429, headers={"Retry-After": "2"})] * 10)
    policy = RetryPolicy(max_attempts=4, jitter=0.0)
    with (
        CloudClient(
            credentials, retry=policy, transport=fake.transport(), sleep=fake_time.sleep
        ) as client,
        pytest.raises(RateLimitError, match="after 4 attempt") as caught,
    ):
        client.list_runs(job_id=1)
    assert fake_time.sleeps == [2.0, 2.0, 2.0]
    assert caught.value.status_code == 429


def test_retry_after_beyond_the_total_budget_gives_up_at_once(credentials, fake, fake_time) -> None:
    fake.fail("GET", r"^/runs/$", Fault(status=429, headers={"Retry-After": "3600"}))
    policy = RetryPolicy(max_total_delay=60, jitter=0.0)
    with (
        CloudClient(
            credentials, retry=policy, transport=fake.transport(), sleep=fake_time.sleep
        ) as client,
        pytest.raises(RateLimitError),
    ):
        client.list_runs(job_id=1)
    assert fake_time.sleeps == []


def test_a_burst_of_500s_recovers_with_exponential_backoff(
    client: CloudClient, fake, fake_time
) -> None:
    fake.fail("GET", r"^/runs/$", *[Fault(status=500)] * 3)
    client.list_runs(job_id=1)
    assert fake_time.sleeps == [1.0, 2.0, 4.0]
    assert fake.routes().count("GET /runs/") == 4


def test_500s_exhausting_the_attempts_raise_server_error(credentials, fake, fake_time) -> None:
    fake.fail("GET", r"^/runs/$", *[Fault(status=503)] * 10)
    policy = RetryPolicy(max_attempts=3, jitter=0.0)
    with (
        CloudClient(
            credentials, retry=policy, transport=fake.transport(), sleep=fake_time.sleep
        ) as client,
        pytest.raises(ServerError) as caught,
    ):
        client.list_runs(job_id=1)
    assert caught.value.status_code == 503
    assert "after 3 attempt(s)" in str(caught.value)
    assert "status.getdbt.com" in str(caught.value)
    assert fake_time.sleeps == [1.0, 2.0]


def test_500s_exhausting_the_time_budget_stop_early(credentials, fake, fake_time) -> None:
    fake.fail("GET", r"^/runs/$", *[Fault(status=500)] * 10)
    policy = RetryPolicy(max_attempts=10, max_total_delay=5.0, jitter=0.0)
    with (
        CloudClient(
            credentials, retry=policy, transport=fake.transport(), sleep=fake_time.sleep
        ) as client,
        pytest.raises(ServerError),
    ):
        client.list_runs(job_id=1)
    assert fake_time.sleeps == [1.0, 2.0]


def test_jitter_shortens_delays_within_its_fraction() -> None:
    policy = RetryPolicy(initial_delay=10.0, max_delay=100.0, jitter=0.2)
    delays = [policy.backoff(1) for _ in range(200)]
    assert all(8.0 <= d <= 10.0 for d in delays)
    assert len(set(delays)) > 1
    assert RetryPolicy(jitter=0.0, max_delay=5.0).backoff(10) == 5.0


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("server disconnected"),
    ],
)
def test_connection_errors_are_retried(client: CloudClient, fake, fake_time, error) -> None:
    fake.fail("GET", r"^/runs/$", Fault(error=error), Fault(error=error))
    client.list_runs(job_id=1)
    assert fake_time.sleeps == [1.0, 2.0]


def test_connection_errors_that_persist_raise_a_clear_error(credentials, fake_time) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    policy = RetryPolicy(max_attempts=2, jitter=0.0)
    with (
        CloudClient(
            credentials, retry=policy, transport=httpx.MockTransport(refuse), sleep=fake_time.sleep
        ) as client,
        pytest.raises(CloudConnectionError) as caught,
    ):
        client.get_run(5)
    message = str(caught.value)
    assert f"GET {BASE}/runs/5/ failed after 2 attempt(s)" in message
    assert "Connection refused" in message and "domain" in message
    assert caught.value.url == f"{BASE}/runs/5/"


@pytest.mark.parametrize(
    ("status", "error", "advice"),
    [
        (400, InvalidRequestError, "refused the request as invalid"),
        (401, AuthenticationError, "check the API key / account id"),
        (403, PermissionDeniedError, "lacks permission"),
        (404, NotFoundError, "check project/environment/job ids"),
        (422, InvalidRequestError, "refused the request as invalid"),
    ],
)
def test_other_4xx_fail_fast_without_retrying(
    client: CloudClient, fake, fake_time, status, error, advice
) -> None:
    fake.fail("GET", r"^/runs/\d+/$", Fault(status=status))
    with pytest.raises(error, match=advice) as caught:
        client.get_run(1)
    assert caught.value.status_code == status
    assert fake_time.sleeps == []
    assert fake.routes() == ["GET /runs/{id}/"]


@pytest.mark.parametrize("status", [408, 409, 425])
def test_gateway_4xx_are_retried_and_raise_transient_error_when_they_persist(
    credentials, fake, fake_time, status
) -> None:
    fake.fail("GET", r"^/runs/\d+/$", *[Fault(status=status)] * 3)
    policy = RetryPolicy(max_attempts=3, jitter=0.0)
    with (
        CloudClient(
            credentials, retry=policy, transport=fake.transport(), sleep=fake_time.sleep
        ) as client,
        pytest.raises(TransientError, match="after 3 attempt") as caught,
    ):
        client.get_run(1)
    assert type(caught.value) is TransientError
    assert caught.value.status_code == status
    assert fake_time.sleeps == [1.0, 2.0]


def test_a_400_names_the_fields_dbt_cloud_rejected(client: CloudClient) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        client.create_job(
            project_id=PROJECT, environment_id=ENVIRONMENT, name="n", execute_steps=["ls -la"]
        )
    assert "execute_steps" in str(caught.value)
    assert "is not a dbt command" in str(caught.value)


def test_trigger_without_cause_would_be_refused_by_the_service(fake, credentials) -> None:
    # The fake enforces the required `cause`, as the real API does; the client always sends it.
    with CloudClient(credentials, transport=fake.transport()) as client:
        job = make_job(client)
        response = client._http.post(f"/jobs/{job}/run/", json={})
    assert response.status_code == 400
    assert response.json()["data"] == {"cause": "This field is required."}


def test_a_body_that_is_not_json_is_a_response_error(credentials) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text="<html>login</html>"))
    with (
        CloudClient(credentials, transport=transport) as client,
        pytest.raises(ResponseError, match="not JSON"),
    ):
        client.get_run(1)


def test_a_run_payload_without_status_is_a_response_error(credentials) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"data": {"id": 1}}))
    with (
        CloudClient(credentials, transport=transport) as client,
        pytest.raises(ResponseError, match="unexpected run"),
    ):
        client.get_run(1)


def test_lost_create_answer_is_recovered_by_name(client: CloudClient, fake) -> None:
    fake.fail("POST", r"^/jobs/$", Fault(status=504, after_acting=True))
    job = client.create_job(
        project_id=PROJECT, environment_id=ENVIRONMENT, name="unique-1", execute_steps=["dbt run"]
    )
    assert [j["id"] for j in fake.active_jobs()] == [job.id]
    assert fake.routes() == ["POST /jobs/", "GET /jobs/"]


@pytest.mark.parametrize("status", [408, 409, 425, 429])
def test_a_create_answered_with_a_gateway_4xx_after_acting_is_recovered_by_name(
    client: CloudClient, fake, status
) -> None:
    # A 429 (or 408/409/425) can come from a gateway after the job was created.
    fake.fail("POST", r"^/jobs/$", Fault(status=status, after_acting=True))
    job = client.create_job(
        project_id=PROJECT, environment_id=ENVIRONMENT, name="unique-3", execute_steps=["dbt run"]
    )
    assert [j["id"] for j in fake.active_jobs()] == [job.id]
    assert fake.routes() == ["POST /jobs/", "GET /jobs/"]


def test_a_trigger_answered_429_after_acting_adopts_the_run(client: CloudClient, fake) -> None:
    job = make_job(client)
    fake.fail("POST", r"/run/$", Fault(status=429, after_acting=True))
    run = client.trigger_run(job, cause="test")
    assert list(fake.runs) == [run.id]
    assert fake.routes()[-2:] == ["POST /jobs/{id}/run/", "GET /runs/"]


def test_create_refused_before_acting_is_sent_again(client: CloudClient, fake) -> None:
    fake.fail("POST", r"^/jobs/$", Fault(status=503))
    client.create_job(
        project_id=PROJECT, environment_id=ENVIRONMENT, name="unique-2", execute_steps=["dbt run"]
    )
    assert fake.routes() == ["POST /jobs/", "GET /jobs/", "POST /jobs/"]
    assert len(fake.active_jobs()) == 1


def test_create_that_could_not_connect_is_sent_again_without_a_lookup(
    client: CloudClient, fake
) -> None:
    fake.fail("POST", r"^/jobs/$", Fault(error=httpx.ConnectError("refused")))
    make_job(client)
    assert fake.routes() == ["POST /jobs/", "POST /jobs/"]


def test_find_jobs_pages_until_it_finds_the_name_and_checks_it_exactly(credentials) -> None:
    # A deployment that ignores the name filter: 250 jobs, ours the oldest.
    jobs = [{"id": i, "name": f"job-{i}", "project_id": 1, "environment_id": 2} for i in range(250)]
    jobs[0]["name"] = "wanted"
    jobs[1]["name"] = "wanted-but-longer"
    pages = []

    def serve(request: httpx.Request) -> httpx.Response:
        offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
        pages.append(offset)
        ordered = sorted(jobs, key=lambda j: -j["id"])
        extra = {"pagination": {"count": limit, "total_count": len(jobs)}}
        return httpx.Response(200, json={"data": ordered[offset : offset + limit], "extra": extra})

    with CloudClient(credentials, transport=httpx.MockTransport(serve)) as client:
        found = client.find_jobs(name="wanted", project_id=1, environment_id=2)
    assert [j.id for j in found] == [0]
    assert pages == [0, 100, 200]


def test_list_jobs_returns_every_job_starting_with_the_prefix_across_pages(credentials) -> None:
    # A deployment that ignores the name filter: ours are spread over three pages.
    jobs = [
        {"id": i, "name": f"other-{i}", "project_id": 1, "environment_id": 2} for i in range(250)
    ]
    for i in (3, 120, 249):
        jobs[i]["name"] = f"build-abc-run-{i}"
    jobs[7]["name"] = "copy of build-abc-run-7"
    jobs[8].update(name="build-abc-run-8", environment_id=99)

    def serve(request: httpx.Request) -> httpx.Response:
        offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
        ordered = sorted(jobs, key=lambda j: -j["id"])
        extra = {"pagination": {"count": limit, "total_count": len(jobs)}}
        return httpx.Response(200, json={"data": ordered[offset : offset + limit], "extra": extra})

    with CloudClient(credentials, transport=httpx.MockTransport(serve)) as client:
        found = client.list_jobs(name_prefix="build-abc-", project_id=1, environment_id=2)
    assert sorted(j.id for j in found) == [3, 120, 249]


def test_artifacts_that_do_not_exist_raise_artifact_not_found(client: CloudClient) -> None:
    from dbt_exec_cloud import ArtifactNotFoundError

    with pytest.raises(ArtifactNotFoundError, match="defer_to_job_id"):
        client.get_job_artifact(12345, "manifest.json")
    with pytest.raises(ArtifactNotFoundError, match=r"has no run_results\.json"):
        client.get_run_artifact(12345, "run_results.json")


def test_client_repr_shows_no_secret(client: CloudClient) -> None:
    assert repr(client) == f"CloudClient(base_url='{BASE}')"
