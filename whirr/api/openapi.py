"""The OpenAPI document, generated from the route table and the msgspec schemas (so the
document cannot disagree with what the server decodes)."""

from __future__ import annotations

import re
from typing import Any

import msgspec

import whirr
from whirr.api.routing import API, Route
from whirr.wire.schemas import ErrorBody

_PARAM = re.compile(r"<(\w+):(\w+)>")
_PARAM_SCHEMAS: dict[str, dict[str, Any]] = {
    "int": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
    "str": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"},
    "path": {"type": "string", "minLength": 1},
}
_REASONS = {
    400: "Unreadable body",
    401: "No token",
    403: "Wrong token, or a request this server does not answer (foreign Host, other site)",
    404: "Not found",
    409: "Conflict (lease lost, stale attempt, wrong state)",
    413: "Body too large",
    415: "Body not sent as application/json",
    422: "Invalid body",
    503: "A store the server depends on is unavailable",
}


def openapi_path(path: str) -> str:
    """``/jobs/<job_id:int>`` -> ``/api/v1/jobs/{job_id}``."""
    return API + _PARAM.sub(lambda m: "{" + m.group(1) + "}", path)


def document(routes: list[Route]) -> dict[str, Any]:
    """The OpenAPI 3.1 document describing ``routes``."""
    types = {t for r in routes for t in (r.body, r.response) if t is not None}
    types.add(ErrorBody)
    ordered = sorted(types, key=lambda t: t.__name__)
    refs, components = msgspec.json.schema_components(
        ordered, ref_template="#/components/schemas/{name}"
    )
    ref = dict(zip(ordered, refs, strict=True))
    error = {"description": "", "content": {"application/json": {"schema": ref[ErrorBody]}}}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        params: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": _PARAM_SCHEMAS[kind]}
            for name, kind in _PARAM.findall(route.path)
        ]
        params += [
            {
                "name": q.name,
                "in": "query",
                "required": False,
                "schema": q.schema,
                "description": q.description,
            }
            for q in route.query
        ]
        # Every body-taking route refuses the types a web page may send (whirr.api.guards).
        takes_body = route.body is not None or route.raw_body is not None
        statuses = (*route.statuses, 415) if takes_body else route.statuses
        ok: dict[str, Any] = {"description": "OK"}
        if route.response is not None:
            ok["content"] = {route.content_type: {"schema": ref[route.response]}}
        else:
            ok["content"] = {route.content_type: {"schema": {"type": "string"}}}
        op: dict[str, Any] = {
            "operationId": route.name,
            "summary": route.summary,
            "parameters": params,
            "responses": {
                "200": ok,
                **{str(s): {**error, "description": _REASONS[s]} for s in statuses},
            },
        }
        if route.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref[route.body]}},
            }
        elif route.raw_body is not None:
            binary = {"type": "string", "format": "binary"}
            op["requestBody"] = {"required": True, "content": {route.raw_body: {"schema": binary}}}
        if route.public:
            op["security"] = []
        else:
            # The scope a named token needs here (OpenAPI 3.1 lets any scheme list roles;
            # requirements listed side by side are alternatives: any one will do).
            op["security"] = [{"bearer": [scope]} for scope in route.needs]
            needs = route.needs
            op["x-whirr-scope"] = needs[0] if len(needs) == 1 else list(needs)
        if route.streams:
            op["x-whirr-stream"] = True
        paths.setdefault(openapi_path(route.path), {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "whirr",
            "version": whirr.__version__,
            "description": "Queue jobs, run them on workers, track runs.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
