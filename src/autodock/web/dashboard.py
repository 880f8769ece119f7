"""The dashboard at ``/``: one Jinja2 page, vanilla JS and CSS, no build step."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from .. import __version__
from ..context import AppContext

__all__ = ["router"]

HERE = Path(__file__).parent
STATIC = HERE / "static"
_MEDIA = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
_env = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
)
router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def index(request: Request) -> HTMLResponse:
    ctx: AppContext = request.app.state.ctx
    html = _env.get_template("index.html").render(
        version=__version__, read_mode=ctx.config.api.read, rules=len(ctx.config.rules)
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


@router.get("/static/{name}")
async def static(name: str) -> FileResponse:
    path = STATIC / name
    if "/" in name or name.startswith(".") or path.suffix not in _MEDIA or not path.is_file():
        raise HTTPException(404)
    return FileResponse(path, media_type=_MEDIA[path.suffix], headers={"Cache-Control": "no-cache"})
