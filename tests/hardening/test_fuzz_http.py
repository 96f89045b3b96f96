"""Schemathesis against /openapi.json, with its response-conformance checks: for every
operation, generated requests (logged in, with the CSRF header) get no 5xx, and a status,
content type, body and headers that the document describes (host: slow).

Driven through hypothesis directly (schemathesis' pytest plugin does not load with this
pytest): bounded examples per operation, derandomized, valid data and then invalid data.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from .conftest import Dashboard, Server

MAX_EXAMPLES = 25
CSRF_HEADER = "X-CSRF-Token"


class Fuzz:
    """One logged-in user's run: every generated request is checked, failures collected."""

    def __init__(self, server: Server) -> None:
        import schemathesis
        from schemathesis.core.failures import FailureGroup

        c = schemathesis.checks
        self.checks = [
            c.not_a_server_error,
            c.status_code_conformance,
            c.content_type_conformance,
            c.response_schema_conformance,
            c.response_headers_conformance,
        ]
        self.failed_check = FailureGroup
        self.url = server.url
        self.user = Dashboard(server.url)
        self.group_id = self.user.group("fuzzed")["id"]
        self.failures: list[str] = []
        self.calls = 0

    def operation(self, op: Any, positive: bool) -> None:
        from schemathesis.generation import GenerationMode

        mode = GenerationMode.POSITIVE if positive else GenerationMode.NEGATIVE

        @given(case=op.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            self.call(case, positive)

        try:
            run()
        except Unsatisfiable:  # nothing of this operation can be made invalid
            assert not positive, op.path

    def call(self, case: Any, positive: bool) -> None:
        if case.headers and CSRF_HEADER in case.headers:
            case.headers[CSRF_HEADER] = self.user.http.cookies.get("csrftoken", "")
        if case.cookies:  # the session's own cookie, not a made-up one
            case.cookies.pop("auth", None)
        if positive and case.path_parameters and self.calls % 2:
            for name in ("group_id", "name"):  # every other case on a real group
                if name in case.path_parameters:
                    case.path_parameters[name] = self.group_id
        r = case.call(base_url=self.url, session=self.user.http, timeout=10)
        self.calls += 1
        try:
            case.validate_response(r, checks=self.checks)
        except self.failed_check as exc:  # collected: the run goes on
            self.failures.append(
                f"{case.method} {case.formatted_path} ({'valid' if positive else 'invalid'} "
                f"data) {r.status_code} {r.text[:200]!r}: {str(exc)[:600]}"
            )


@pytest.mark.host
def test_api_answers_as_documented(server: Server) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    fuzz = Fuzz(server)
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    # deleting takes the group the others read (found by its id: a rename keeps it), and
    # logging out ends the session they run in: last
    operations.sort(key=lambda op: (op.path == "/auth/logout", op.method == "DELETE"))
    for op in operations:
        fuzz.operation(op, positive=True)
        fuzz.operation(op, positive=False)
    assert len(operations) >= 28
    assert fuzz.calls >= len(operations) * 2
    failures = fuzz.failures
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:15])
