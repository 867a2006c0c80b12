"""The API token never appears in a log record, exception text, repr, result or pickle."""

from __future__ import annotations

import logging
import pickle
import traceback
import warnings

import httpx
import pytest
from dbt_exec_cloud import CloudClient, DbtCloudError, InvalidCliArgsError, RetryPolicy
from dbt_graph import Command, ExecutionRequest
from exec_cloud.fake_cloud import TOKEN, FakeDbtCloud, Fault


def _everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        if record.exc_info:
            parts.append("".join(traceback.format_exception(*record.exc_info)))
    return "\n".join(parts)


def test_token_never_appears_anywhere_across_success_and_failure_paths(
    make_executor, cloud_network: FakeDbtCloud, fake_time, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the root: httpx, httpcore and ours
    fake = cloud_network
    executor = make_executor(
        retry=RetryPolicy(max_attempts=2, jitter=0.0), timeout_seconds=25, transport=None
    )
    node = fake.manifest.node("model.shop.orders")
    runs = []

    runs.append(executor.execute(ExecutionRequest(command=Command.RUN, nodes=(node,))))
    fake.fail("POST", r"^/jobs/$", Fault(status=500), Fault(status=500))
    runs.append(executor.execute(ExecutionRequest(command=Command.RUN, nodes=(node,))))
    fake.fail(
        "POST",
        r"^/jobs/$",
        Fault(error=httpx.ConnectError("refused")),
        Fault(error=httpx.ConnectError("refused")),
    )
    runs.append(executor.execute(ExecutionRequest(command=Command.RUN, nodes=(node,))))
    fake.fail("POST", r"^/jobs/$", Fault(status=401))
    runs.append(executor.execute(ExecutionRequest(command=Command.RUN, nodes=(node,))))
    fake.never_finish = True
    runs.append(executor.execute(ExecutionRequest(command=Command.RUN, nodes=(node,))))

    assert [r.error.type if r.error else None for r in runs] == [
        None,
        "ServerError",
        "CloudConnectionError",
        "AuthenticationError",
        "TimeoutError",
    ]
    logged = _everything_logged(caplog)
    assert "HTTP Request" in logged  # httpx's own DEBUG/INFO lines were captured
    assert TOKEN not in logged
    assert all(TOKEN not in repr(r) for r in runs)
    assert TOKEN not in repr(executor)
    assert TOKEN not in repr(executor.client)
    assert TOKEN.encode() not in pickle.dumps(executor)
    assert TOKEN not in repr(pickle.loads(pickle.dumps(executor)))
    assert TOKEN not in repr(pickle.dumps(executor))


def test_token_is_not_in_raised_errors_or_their_tracebacks(credentials, fake, fake_time) -> None:
    fake.fail("GET", r"^/runs/\d+/$", Fault(status=403))
    with (
        CloudClient(credentials, transport=fake.transport(), sleep=fake_time.sleep) as client,
        pytest.raises(DbtCloudError) as caught,
    ):
        client.get_run(1)
    text = "".join(traceback.format_exception(caught.value))
    assert TOKEN not in text
    assert TOKEN not in repr(caught.value.__dict__)
    assert TOKEN.encode() not in pickle.dumps(caught.value)


def test_token_is_not_in_sweep_logs_or_undeleted_job_warnings(
    make_executor, fake: FakeDbtCloud, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    executor = make_executor(retry=RetryPolicy(max_attempts=1, jitter=0.0))
    node = fake.manifest.node("model.shop.orders")
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        with executor.run_scope():
            executor.resolve_manifest()
            fake.fail("DELETE", r"^/jobs/\d+/$", Fault(status=500), Fault(status=500))
            executor.execute(ExecutionRequest(command=Command.RUN, nodes=(node,)))
            fake.fail("GET", r"^/jobs/$", Fault(status=503))
    with pytest.raises(InvalidCliArgsError) as refused:
        executor.validate_extra_args(["--profiles-dir", "/secrets"])

    assert len(warned) == 2  # the failed deletion, then the sweep's failed retry
    assert "Could not list the dbt Cloud jobs" in caplog.text
    assert "deleted 0 leftover job(s)" in caplog.text  # its one deletion failed again
    texts = [str(w.message) for w in warned] + [_everything_logged(caplog), str(refused.value)]
    assert all(TOKEN not in text for text in texts)
