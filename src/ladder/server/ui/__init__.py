"""The web UI: server-rendered pages plus a little vanilla JavaScript, mounted on the API app at `/`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

HERE = Path(__file__).resolve().parent
STATIC_PREFIX = "/ui-static"

# Defence in depth: even if some data slipped into the DOM as markup, no inline or foreign script runs.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

# path, template, nav title, script
PAGES: list[tuple[str, str, str, str]] = [
    ("/", "home.html", "Overview", "home.js"),
    ("/chat", "chat.html", "Chat", "chat.js"),
    ("/knowledge", "knowledge.html", "Knowledge bases", "knowledge.js"),
    ("/tuning", "tuning.html", "Fine-tuning", "tuning.js"),
    ("/reports", "reports.html", "Evals & ladder", "reports.js"),
    ("/usage", "usage.html", "Usage & cost", "usage.js"),
]

_templates = Jinja2Templates(directory=str(HERE / "templates"))  # autoescape is on for .html


def _page(template: str, title: str, script: str):
    async def render(request: Request) -> Response:
        ctx = {
            "title": title,
            "script": script,
            "static": STATIC_PREFIX,
            "path": request.url.path,
            "nav": [(p, t) for p, _, t, _ in PAGES],
        }
        return _templates.TemplateResponse(request, template, ctx, headers=SECURITY_HEADERS)

    return render


def mount_ui(app: FastAPI) -> None:
    """Add the UI's pages and static files to `app` (kept out of the OpenAPI schema)."""
    app.mount(STATIC_PREFIX, StaticFiles(directory=str(HERE / "static")), name="ui-static")
    for path, template, title, script in PAGES:
        app.add_api_route(
            path,
            _page(template, title, script),
            methods=["GET"],
            response_class=HTMLResponse,
            include_in_schema=False,
            name=f"ui:{template}",
        )
    app.add_api_route(
        "/login",
        _page("login.html", "Log in", "login.js"),
        methods=["GET"],
        response_class=HTMLResponse,
        include_in_schema=False,
        name="ui:login",
    )

    async def favicon() -> Response:
        return RedirectResponse(f"{STATIC_PREFIX}/favicon.svg")

    app.add_api_route("/favicon.ico", favicon, methods=["GET"], include_in_schema=False)
