"""schemathesis against the OpenAPI schema: generated requests never cause a 500, and every answer
(errors included) has a documented status, content type and body. Bounded: a few examples per
operation.

One check is left out: ``positive_data_acceptance`` takes any 400 to a schema-valid request as a
bug, but a valid request can ask for what this collection cannot do (``nprobe`` on an exact
index, a re-ranking or a text search it lacks, an unknown faiss factory string), and the API
says so with a 400 on purpose.
"""

from __future__ import annotations

import pytest

from tests.service.conftest import API_KEY

schemathesis = pytest.importorskip("schemathesis", reason="the schema test needs schemathesis")


def test_api_follows_its_schema(collection_dir):
    from hypothesis import HealthCheck, given, settings

    from lookalike.service import ServiceConfig, create_app

    app = create_app(ServiceConfig(collections=(collection_dir,), api_key=API_KEY, max_upload_bytes=200_000))
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
        def check(case):
            case.call_and_validate(headers={"X-API-Key": API_KEY},
                                   excluded_checks=[schemathesis.checks.positive_data_acceptance])

        check()
