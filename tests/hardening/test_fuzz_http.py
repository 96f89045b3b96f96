"""Schemathesis against /openapi.json, with its response-conformance checks: for every
operation, generated requests (logged in, with the CSRF header) get no 5xx, and a status,
content type, body and headers that the document describes; requests that break the
document's schemas are refused (host: slow).

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
        self.negative_checks = [*self.checks, c.negative_data_rejection]
        self.failed_check = FailureGroup
        self.url = server.url
        self.user = Dashboard(server.url)
        self.group_id = self.user.group("fuzzed")["id"]
        self.failures: list[str] = []
        self.calls = 0
        self.refusals = 0  # cases checked to be refused

    def operation(self, op: Any, positive: bool) -> None:
        from schemathesis.generation import GenerationMode

        mode = GenerationMode.POSITIVE if positive else GenerationMode.NEGATIVE
        declared = {p.get("name") for p in op.definition.raw.get("parameters", ())}

        @given(case=op.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            self.call(case, positive, declared)

        try:
            run()
        except Unsatisfiable:  # nothing of this operation can be made invalid
            assert not positive, op.path

    def checks_for(self, case: Any, declared: set[str]) -> list[Any]:
        """With invalid data, also: it is refused, where it is invalid in what is sent as
        generated (the session cookie and the CSRF header are replaced by the real ones) and
        not merely by query parameters the operation doesn't take (ignored, as they were)."""
        from schemathesis.core.parameters import ParameterLocation as At

        if set(case.query or ()) - declared:
            return self.checks
        sent = (At.QUERY, At.PATH, At.BODY)
        if any(case.meta.is_negative_at(at) for at in sent):
            self.refusals += 1
            return self.negative_checks
        return self.checks

    def call(self, case: Any, positive: bool, declared: set[str]) -> None:
        # assigned, not changed in place: schemathesis then judges the request as sent
        if case.headers and CSRF_HEADER in case.headers:
            token = self.user.http.cookies.get("csrftoken", "")
            case.headers = {**case.headers, CSRF_HEADER: token}
        if case.cookies:  # the session's own cookie, not a made-up one
            case.cookies = {k: v for k, v in case.cookies.items() if k != "auth"}
        if positive and case.path_parameters and self.calls % 2:
            for name in ("group_id", "name"):  # every other case on a real group
                if name in case.path_parameters:
                    case.path_parameters[name] = self.group_id
        r = case.call(base_url=self.url, session=self.user.http, timeout=10)
        self.calls += 1
        try:
            case.validate_response(r, checks=self.checks_for(case, declared))
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
    assert fuzz.refusals >= len(operations) * 2, fuzz.refusals
    failures = fuzz.failures
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)
