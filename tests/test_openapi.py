"""/openapi.json describes what the server sends (issue 13, defect 11): every error is
`{"error","detail"}` (FastAPI's default 422 array never appears), and the 4xx answers the
routes give are documented."""

from __future__ import annotations

from typing import Any

from tests.support import LiveServer

ERROR_REF = "#/components/schemas/ErrorOut"


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def test_every_error_answer_is_documented_in_the_error_shape(server: LiveServer) -> None:
    with server.http() as client:
        doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert set(schemas["ErrorOut"]["required"]) == {"error", "detail"}
    for path, method, op in _operations(doc):
        for status, answer in op["responses"].items():
            if int(status) >= 400:
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": ERROR_REF}, (path, method, status)
        if path.startswith(("/rooms", "/admin", "/broadcasts", "/auth/me", "/auth/ws-ticket")):
            assert {"401", "422", "503"} <= set(op["responses"]), (path, method)


def test_real_error_answers_match_the_document(server: LiveServer) -> None:
    """Unauthenticated calls to every documented path answer 401 (or 422 for a bad body),
    in the error shape, and that status is documented for the operation."""
    with server.http() as client:
        doc = client.get("/openapi.json").json()
        checked = 0
        for path, method, op in _operations(doc):
            if not path.startswith(("/rooms", "/admin", "/broadcasts", "/auth/me")):
                continue
            url = path.replace("{room}", "general").replace("{username}", "bob")
            r = client.request(method.upper(), url, json={} if method != "get" else None)
            assert str(r.status_code) in op["responses"], (method, path, r.status_code)
            assert set(r.json()) >= {"error", "detail"}, (method, path)
            checked += 1
    assert checked >= 12
