"""OpenAI-shaped errors: every failure answers `{"error": {"message", "type", "param", "code"}}`."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from ladder.errors import LadderError

log = logging.getLogger("ladder.server")
# An error never echoes megabytes of input; 2,000 characters fit a dataset error's count and its
# first problems (data/formats.py MESSAGE_CHARS).
MAX_MESSAGE = 2000

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "api_error",
    503: "server_error",
}


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


ERROR_RESPONSES = {
    status: {"model": ErrorBody, "description": desc}
    for status, desc in [
        (400, "Invalid request"),
        (401, "Missing or bad API key"),
        (403, "Not allowed"),
        (404, "Not found"),
        (409, "Conflict"),
        (413, "Body too large"),
        (422, "Validation error"),
        (429, "Rate limited"),
        (500, "Server error"),
    ]
}


class ApiError(Exception):
    """An HTTP error raised by the server layer itself (auth, limits)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        type_: str | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.headers = headers or {}
        self.type = type_ or _TYPES.get(status, "invalid_request_error")


def _clip(text: str) -> str:
    text = str(text)
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "…"


def error_response(
    status: int,
    message: str,
    *,
    type_: str | None = None,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {
        "error": {
            "message": _clip(message),
            "type": type_ or _TYPES.get(status, "invalid_request_error"),
            "param": _clip(param) if param else None,
            "code": code,
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def _is_union_tag(part: object) -> bool:
    """pydantic names the member of a union it tried (`str`, `list[constrained-str]`, `ContentPart`);
    such a name is not a field of the request."""
    return isinstance(part, str) and (
        part in ("str", "int", "float", "bool", "none", "dict", "list")
        or any(c in part for c in "[-")
        or part[:1].isupper()
    )


def _loc(loc: tuple) -> str:
    if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
        loc = loc[1:]  # where the value was sent; a field may itself be called "query"
    parts = [str(p) for p in loc if not _is_union_tag(p)]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "body"


def allowed_methods(request: Request) -> list[str]:
    """Every method some route takes at this path.

    Starlette's own 405 names only the first route whose path matched, but one path is often
    served by several routes (GET /api/kbs and POST /api/kbs are two); so each method is tried
    against the app's routes.
    """
    routes = [r for r in request.app.router.routes if not isinstance(r, Mount)]
    return [
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] == Match.FULL for r in routes)
    ]


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _json_errors_in_spec(app: FastAPI) -> None:
    """Document error responses as JSON on every operation, also where the success is HTML or a file.

    FastAPI gives an operation's extra responses the media type of its success response; ours
    are always `{"error": ...}` JSON (see `install`).
    """
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            spec = generate()
            for operations in spec.get("paths", {}).values():
                for op in operations.values():
                    for status, response in op.get("responses", {}).items():
                        content = response.get("content")
                        if status.isdigit() and int(status) >= 400 and content and "application/json" not in content:
                            response["content"] = {"application/json": next(iter(content.values()))}
        return app.openapi_schema

    app.openapi = openapi


def install(app: FastAPI) -> None:
    _json_errors_in_spec(app)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, e: ApiError):
        return error_response(e.status, e.message, type_=e.type, param=e.param, code=e.code, headers=e.headers)

    @app.exception_handler(LadderError)
    async def _ladder_error(_: Request, e: LadderError):
        return error_response(e.status, e.message, type_=e.error_type, param=e.param, code=e.code)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, e: RequestValidationError):
        errs = e.errors()
        first = errs[0] if errs else {"loc": (), "msg": "invalid request"}
        param = _loc(tuple(first.get("loc", ())))
        # pydantic's own message, never the offending input (it may be megabytes)
        msg = f"{param}: {first.get('msg', 'invalid')}"
        if str((first.get("ctx") or {}).get("pattern", "")).startswith("^file-"):
            msg = f"{param}: must be a file id (file-…) from POST /v1/files; paths and other names are not accepted"
        if len(errs) > 1:
            msg += f" (and {len(errs) - 1} more problem{'s' if len(errs) > 2 else ''})"
        return error_response(422, msg, param=param, code="invalid_value")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException):
        msg = e.detail if isinstance(e.detail, str) else "request failed"
        headers = dict(getattr(e, "headers", None) or {})
        if e.status_code == 404 and msg == "Not Found":
            msg = "no such endpoint; see /openapi.json"
        if e.status_code == 405:
            allowed = allowed_methods(request)
            headers["Allow"] = ", ".join(allowed)
            msg = f"{request.method} is not allowed on {request.url.path[:200]}; it takes {', '.join(allowed)}"
        return error_response(e.status_code, msg, headers=headers or None)

    @app.exception_handler(Exception)
    async def _bug(_: Request, e: Exception):
        log.exception("unhandled error")
        return error_response(
            500, f"internal server error ({type(e).__name__}); see the server log", type_="server_error"
        )
