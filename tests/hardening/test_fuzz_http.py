"""Schemathesis against /openapi.json: no 5xx for any generated request (host: slow).

Driven through hypothesis directly (schemathesis' pytest plugin does not load with this
pytest), one bounded run per operation, logged in so the handlers behind auth run too.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from .conftest import Dashboard, Server

MAX_EXAMPLES = 20


@pytest.mark.host
def test_api_never_5xx(server: Server) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    user = Dashboard(server.url)
    user.group("fuzzed")
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        op = result.ok()
        operations += 1

        @given(case=op.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            r = case.call(base_url=server.url, session=user.http, timeout=10)
            if r.status_code >= 500:
                failures.append(f"{case.method} {case.path} {r.status_code}: {r.text[:200]}")

        run()
    assert operations > 5
    assert not failures, failures[:5]
