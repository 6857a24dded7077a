import json
import logging

import pytest
from django.test import Client


def test_the_openapi_schema_generates_and_the_docs_page_loads(db):
    schema = Client().get("/api/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/health" in paths and "/api/workspaces/current" in paths
    assert Client().get("/api/docs").status_code == 200


@pytest.mark.django_db
def test_unknown_api_paths_answer_json_not_html():
    response = Client().get("/api/no-such-thing")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.django_db
def test_unknown_pages_answer_a_friendly_404():
    response = Client().get("/no-such-page/")
    assert response.status_code == 404
    assert "could not find that page" in response.content.decode()


@pytest.mark.django_db
def test_every_response_carries_a_request_id():
    response = Client(headers={"X-Request-ID": "trace-abc-123"}).get("/api/workspaces/current")
    assert response["X-Request-ID"] == "trace-abc-123"
    generated = Client().get("/api/health")["X-Request-ID"]
    assert len(generated) == 32


@pytest.mark.django_db
def test_an_unsafe_request_id_is_replaced():
    response = Client(headers={"X-Request-ID": "bad id\nwith newline"}).get("/api/health")
    assert response["X-Request-ID"] != "bad id\nwith newline"


def test_log_lines_are_json_with_the_request_id():
    from apps.core.logging import JsonFormatter, RequestIdFilter, request_id_var

    record = logging.LogRecord("orrery.test", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    token = request_id_var.set("req-42")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hello you"
    assert line["request_id"] == "req-42"
    assert line["level"] == "INFO"


def test_gateway_paths_skip_the_session_and_csrf_middleware():
    from apps.core.api_handler import API_MIDDLEWARE, ApiASGIHandler

    handler = ApiASGIHandler()
    assert handler._view_middleware == []  # no CSRF view check on bearer-key calls
    assert all("sessions" not in path and "csrf" not in path for path in API_MIDDLEWARE)
