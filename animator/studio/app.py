"""The studio's HTTP side: a small ASGI app (Starlette) over `Studio`, served by uvicorn.

Guards, in order: on a loopback address only `Host: 127.0.0.1 / localhost` is answered (a web
page elsewhere cannot rebind a name to it); with a token (any other `--host`) every request
carries it, in the URL once, then in a same-site cookie; a request that changes anything needs
the `X-Studio` header, which another site's page cannot send without the studio's consent (CORS
is never granted); a file is served only from inside the renders folder (`work.inside`).
"""

from __future__ import annotations

import contextlib
import secrets
from importlib import resources

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from animator.errors import AnimatorError, ConfigError, TooLarge
from animator.studio import form
from animator.studio.work import DOWNLOADS, STUDIO_ADVICE, Studio, StudioError, inside

LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
PAGE_FILES = {"studio.js": "text/javascript", "studio.css": "text/css"}
MAX_UPLOAD_BYTES = 512 * 1024 * 1024  # a compressed image this large is refused unread
TOKEN_COOKIE = "studio_token"
STARTER = """\
# A dream of noise: upload a photo to dream it instead.
input: {noise: {size: [256, 256], seed: 0}}
frames: 12
fps: 8
dream:
  octaves: 2
  steps: 6
  step_size: 2.0
transforms:
  - zoom: {factor: 1.04}
"""


def create_app(studio: Studio, token: str | None = None, loopback: bool = True) -> Starlette:
    """The studio's ASGI app. `token`: required on every request (when not on loopback)."""
    api = _Api(studio)
    routes = [
        Route("/", api.page),
        Route("/page/{file}", api.page_file),
        Route("/api/form", api.describe),
        Route("/api/check", api.check, methods=["POST"]),
        Route("/api/dump", api.dump, methods=["POST"]),
        Route("/api/preview", api.preview, methods=["POST"]),
        Route("/api/soundtrack", api.soundtrack, methods=["POST"]),
        Route("/api/render", api.render, methods=["POST"]),
        Route("/api/cancel", api.cancel, methods=["POST"]),
        Route("/api/status", api.status),
        Route("/api/live/{index:int}.png", api.live),
        Route("/api/renders", api.renders),
        Route("/api/download/{name}.{kind}", api.download),
        Route("/api/upload", api.upload, methods=["POST"]),
        Route("/api/inputs", api.inputs),
        Route("/files/{path:path}", api.file),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=list(LOOPBACK))] if loopback else []
    app = Starlette(routes=routes, middleware=middleware, lifespan=_lifespan(studio),
                    exception_handlers={AnimatorError: _error_response})
    return _Guard(app, token)


def _lifespan(studio: Studio):
    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await run_in_threadpool(studio.close)  # Ctrl-C: the render keeps every frame it dreamed

    return lifespan


class _Guard:
    """ASGI middleware: the token (if any) and the X-Studio header on requests that change things."""

    def __init__(self, app, token: str | None) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        given = request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE) or ""
        if self.token and not secrets.compare_digest(given.encode(), self.token.encode()):
            response = JSONResponse({"message": "this studio needs the token from the URL it printed "
                                                "at start: open that URL"}, 403)
            return await response(scope, receive, send)
        if request.method not in ("GET", "HEAD") and request.headers.get("x-studio") != "1":
            response = JSONResponse({"message": "requests that change things come from the studio's "
                                                "own page (X-Studio header missing)"}, 403)
            return await response(scope, receive, send)
        await self.app(scope, receive, send)


def _error_response(request: Request, error: Exception) -> JSONResponse:
    """An error as the page shows it: the message (in the page's words) and, for a config, each
    problem beside its key path."""
    body = {"message": error.worded(STUDIO_ADVICE) if isinstance(error, AnimatorError) else str(error)}
    if isinstance(error, ConfigError):
        body["problems"] = _problems(error)
    status = getattr(error, "status", 400)
    return JSONResponse(body, status)


def _problems(error: ConfigError) -> list[dict]:
    """Each problem of a config as the page places it: beside the field at its key path."""
    return [{"path": path, "message": line} for path, line in error.problems]


class _Api:
    def __init__(self, studio: Studio) -> None:
        self.studio = studio

    async def page(self, request: Request) -> Response:
        html = resources.files("animator.studio").joinpath("page/index.html").read_text("utf-8")
        response = Response(html, media_type="text/html")
        token = request.query_params.get("token")
        if token:  # the page's later requests (images, downloads) carry it as a cookie
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response

    async def page_file(self, request: Request) -> Response:
        name = request.path_params["file"]
        if name not in PAGE_FILES:
            raise StudioError(f"no such page file: '{name}'", 404)
        text = resources.files("animator.studio").joinpath(f"page/{name}").read_text("utf-8")
        return Response(text, media_type=PAGE_FILES[name])

    async def describe(self, request: Request) -> JSONResponse:
        return JSONResponse({**form.describe(), "starter": STARTER, "folder": str(self.studio.root),
                             "max_pixels": self.studio.max_pixels, "downloads": list(DOWNLOADS)})

    async def check(self, request: Request) -> JSONResponse:
        """The page's YAML checked: its mapping (for the form), and the problems by key path in
        the CLI's words (a YAML that does not parse is a 400 with the reason)."""
        from animator import config as config_module

        body = await _json(request)
        text, name = body.get("yaml", ""), str(body.get("name") or "draft")
        data = config_module.parse(text, f"{name}.yaml")
        try:
            await run_in_threadpool(self.studio.check, text, name)
        except ConfigError as error:
            return JSONResponse({"ok": False, "config": data, "message": error.worded(STUDIO_ADVICE),
                                 "problems": _problems(error)})
        return JSONResponse({"ok": True, "config": data, "message": "", "problems": []})

    async def inputs(self, request: Request) -> JSONResponse:
        """The images in inputs/, for the input picker."""
        return JSONResponse(await run_in_threadpool(self.studio.inputs))

    async def dump(self, request: Request) -> JSONResponse:
        data = (await _json(request)).get("config")
        if not isinstance(data, dict):
            raise StudioError("expected {config: {...}}")
        return JSONResponse({"yaml": self.studio.dump(data)})

    async def preview(self, request: Request) -> Response:
        text = (await _json(request)).get("yaml", "")
        png = await run_in_threadpool(self.studio.preview, text)
        return Response(png, media_type="image/png")

    async def soundtrack(self, request: Request) -> JSONResponse:
        """The config's soundtrack for the page: its features' plot (a PNG as a data URL) and
        where to play it from; `{"audio": null}` without `audio:`."""
        import base64

        body = await _json(request)
        found = await run_in_threadpool(self.studio.soundtrack, body.get("yaml", ""),
                                        str(body.get("name") or "draft"))
        if found is None:
            return JSONResponse({"audio": None})
        png, sound = found
        return JSONResponse({"audio": {**sound, "plot": "data:image/png;base64,"
                                       + base64.b64encode(png).decode("ascii")}})

    async def render(self, request: Request) -> JSONResponse:
        body = await _json(request)
        job = await run_in_threadpool(self.studio.start, body.get("yaml", ""), str(body.get("name", "")),
                                      str(body.get("mode", "new")))
        return JSONResponse(job.status(), 202)

    async def cancel(self, request: Request) -> JSONResponse:
        job = self.studio.cancel()
        return JSONResponse(job.status() if job else {"state": "idle"})

    async def status(self, request: Request) -> JSONResponse:
        job = self.studio.job
        since = int(request.query_params.get("since", "0") or 0)
        return JSONResponse(job.status(since) if job else {"state": "idle", "frames": []})

    async def live(self, request: Request) -> Response:
        job, index = self.studio.job, request.path_params["index"]
        png = job.frames.get(index) if job else None
        if png is None:
            raise StudioError(f"frame {index} is not in memory: open it from the frames folder", 404)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    async def renders(self, request: Request) -> JSONResponse:
        return JSONResponse(await run_in_threadpool(self.studio.gallery))

    async def download(self, request: Request) -> FileResponse:
        name, kind = request.path_params["name"], request.path_params["kind"]
        path = await run_in_threadpool(self.studio.download, name, kind)
        return FileResponse(path, filename=path.name)

    async def upload(self, request: Request) -> JSONResponse:
        """An image for the config's input: refused unread if too big, from its header if over
        max_pixels."""
        length = request.headers.get("content-length")
        if length is None or not length.isdigit():
            raise StudioError("an upload needs a Content-Length", 411)
        if int(length) > MAX_UPLOAD_BYTES:
            raise StudioError(f"upload of {int(length):,} bytes refused: the limit is "
                              f"{MAX_UPLOAD_BYTES:,}; shrink the image", 413)
        async with request.form(max_files=1, max_fields=4) as fields:
            upload = fields.get("file")
            if upload is None or isinstance(upload, str):
                raise StudioError("expected a file in the form field 'file'")
            max_pixels = _positive(fields.get("max_pixels"), self.studio.max_pixels)
            try:
                path = await run_in_threadpool(self.studio.upload, upload.filename, upload.file, max_pixels)
            except TooLarge as error:
                raise StudioError(str(error), 413) from error
        return JSONResponse({"path": path})

    async def file(self, request: Request) -> FileResponse:
        path = inside(self.studio.root, request.path_params["path"])
        if not path.is_file():
            raise StudioError(f"'{request.path_params['path']}' does not exist", 404)
        return FileResponse(path, headers={"Cache-Control": "no-store"})


async def _json(request: Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise StudioError("expected a JSON body") from None
    if not isinstance(body, dict):
        raise StudioError("expected a JSON object")
    return body


def _positive(value, default: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return number if number > 0 else default
