"""The studio's HTTP side: a small ASGI app (Starlette) over `Studio`, served by uvicorn.

Guards, in order: on a loopback address only `Host: 127.0.0.1 / localhost` is answered (a web
page elsewhere cannot rebind a name to it); with a token (any other `--host`) every request
carries it, in the URL once, then in a same-site cookie; a request that changes anything needs
the `X-Studio` header, which another site's page cannot send without the studio's consent (CORS
is never granted); a file is served only from inside the renders folder (`work.inside`).
A GET only reads: nothing it asks writes to the disk or loads code (a video the render did not
make is assembled by a POST, `/api/make`). Whatever a request holds, the answer is a 4xx with
one line of JSON, never a traceback: an error nobody foresaw in the page's own config is a 422
(`work.unforeseen`), one in the studio itself a 500 with one line, and one line in the terminal.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import math
import secrets
import traceback
from importlib import resources

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from animator.settings.errors import AnimatorError, ConfigError, TooLarge, excerpt
from animator.settings.params import SOUND_FORMATS
from animator.studio import form
from animator.studio.work import DOWNLOADS, STUDIO_ADVICE, Studio, StudioError, inside

LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
PAGE_FILES = {"studio.js": "text/javascript", "studio.css": "text/css"}
MAX_UPLOAD_BYTES = 512 * 1024 * 1024  # a compressed image this large is refused unread
MAX_JSON_BYTES = 1024 * 1024  # a request's JSON: a config is at most 256 KB of YAML
MAX_INDEX_DIGITS = 9  # a live frame's index (frames are at most a million)
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
        Route("/api/live/{index}.png", api.live),
        Route("/api/renders", api.renders),
        Route("/api/download/{name}.{kind}", api.download),
        Route("/api/make/{name}.{kind}", api.make, methods=["POST"]),
        Route("/api/upload", api.upload, methods=["POST"]),
        Route("/api/inputs", api.inputs),
        Route("/files/{path:path}", api.file),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=list(LOOPBACK))] if loopback else []
    app = Starlette(routes=routes, middleware=middleware, lifespan=_lifespan(studio),
                    exception_handlers={AnimatorError: _error_response, HTTPException: _http_error,
                                        Exception: _internal_error})
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
        try:
            await self._guarded(scope, receive, send)
        except Exception as error:  # answered already (`_internal_error`): one line here too
            _log.error("studio: internal error on %s: %s", excerpt(scope.get("path"), 200),
                       _one_line(error))

    async def _guarded(self, scope, receive, send):
        request = Request(scope)
        given = request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE) or ""
        if self.token and not secrets.compare_digest(given.encode(), self.token.encode()):
            response = Json({"message": "this studio needs the token from the URL it printed "
                                                "at start: open that URL"}, 403)
            return await response(scope, receive, send)
        if request.method not in ("GET", "HEAD") and request.headers.get("x-studio") != "1":
            response = Json({"message": "requests that change things come from the studio's "
                                                "own page (X-Studio header missing)"}, 403)
            return await response(scope, receive, send)
        await self.app(scope, receive, send)


class Json(JSONResponse):
    """A JSON answer whatever the values hold: non-finite numbers and dates (which YAML reads)
    as text, other keys as text, every character ASCII-escaped (a lone surrogate too)."""

    def render(self, content) -> bytes:
        return json.dumps(_plain(content), ensure_ascii=True, allow_nan=False,
                          separators=(",", ":")).encode("ascii")


def _plain(value):
    """`value` as JSON can carry it: YAML's .inf/.nan, dates, sets and bytes become text or lists."""
    if isinstance(value, dict):
        return {key if isinstance(key, str) else str(_plain(key)): _plain(item)
                for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


_log = logging.getLogger("animator.studio")


def _one_line(error: BaseException) -> str:
    """`Type: message (file:line)` of where an error was raised: enough to report it."""
    where = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    place = f" ({where.filename.rpartition('/')[2]}:{where.lineno})" if where else ""
    return f"{type(error).__name__}: {excerpt(str(error), 200)}{place}"


def _http_error(request: Request, error: HTTPException) -> Response:
    """Starlette's own refusals (no such route, a method not allowed, multipart it cannot parse)
    in the studio's form: one line of JSON."""
    if error.status_code in (204, 304):
        return Response(status_code=error.status_code, headers=error.headers)
    return Json({"message": str(error.detail)}, error.status_code, headers=error.headers)


def _internal_error(request: Request, error: Exception) -> JSONResponse:
    return Json({"message": f"internal error ({_one_line(error)}): the studio goes on; please "
                            "report it with the request that caused it"}, 500)


def _error_response(request: Request, error: Exception) -> JSONResponse:
    """An error as the page shows it: the message (in the page's words) and, for a config, each
    problem beside its key path."""
    body = {"message": error.worded(STUDIO_ADVICE) if isinstance(error, AnimatorError) else str(error)}
    if isinstance(error, ConfigError):
        body["problems"] = _problems(error)
    status = getattr(error, "status", 400)
    return Json(body, status)


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
        return Json({**form.describe(), "starter": STARTER, "folder": str(self.studio.root),
                     "max_pixels": self.studio.max_pixels, "downloads": list(DOWNLOADS),
                     "videos": list(SOUND_FORMATS)})  # the kinds a <video> plays

    async def check(self, request: Request) -> JSONResponse:
        """The page's YAML checked: its mapping (for the form), and the problems by key path in
        the CLI's words (a YAML that does not parse is a 400 with the reason)."""
        from animator import config as config_module

        body = await _json(request)
        text, name = _text(body, "yaml"), _text(body, "name") or "draft"
        data = config_module.parse(text, f"{name}.yaml")
        try:
            await run_in_threadpool(self.studio.check, text, name)
        except ConfigError as error:
            return Json({"ok": False, "config": data, "message": error.worded(STUDIO_ADVICE),
                                 "problems": _problems(error)})
        return Json({"ok": True, "config": data, "message": "", "problems": []})

    async def inputs(self, request: Request) -> JSONResponse:
        """The images in inputs/, for the input picker."""
        return Json(await run_in_threadpool(self.studio.inputs))

    async def dump(self, request: Request) -> JSONResponse:
        data = (await _json(request)).get("config")
        if not isinstance(data, dict):
            raise StudioError("expected {config: {...}}")
        return Json({"yaml": self.studio.dump(data)})

    async def preview(self, request: Request) -> Response:
        text = _text(await _json(request), "yaml")
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
        job = await run_in_threadpool(self.studio.start, _text(body, "yaml"), _text(body, "name"),
                                      _text(body, "mode") or "new")
        return Json(job.status(), 202)

    async def cancel(self, request: Request) -> JSONResponse:
        job = self.studio.cancel()
        return Json(job.status() if job else {"state": "idle"})

    async def status(self, request: Request) -> JSONResponse:
        job = self.studio.job
        since = _index(request.query_params.get("since", "0") or "0", "since")
        return Json(job.status(since) if job else {"state": "idle", "frames": []})

    async def live(self, request: Request) -> Response:
        job, index = self.studio.job, _index(request.path_params["index"], "frame", 404)
        png = job.frames.get(index) if job else None
        if png is None:
            raise StudioError(f"frame {index} is not in memory: open it from the frames folder", 404)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    async def renders(self, request: Request) -> JSONResponse:
        return Json(await run_in_threadpool(self.studio.gallery))

    async def download(self, request: Request) -> FileResponse:
        name, kind = request.path_params["name"], request.path_params["kind"]
        path = await run_in_threadpool(self.studio.download, name, kind)
        return FileResponse(path, filename=path.name)

    async def make(self, request: Request) -> JSONResponse:
        """Assemble a render's video that it did not make (from its frames); then it downloads."""
        name, kind = request.path_params["name"], request.path_params["kind"]
        path = await run_in_threadpool(self.studio.make, name, kind)
        return Json({"path": path.relative_to(self.studio.root).as_posix()})

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
        return Json({"path": path})

    async def file(self, request: Request) -> FileResponse:
        path = inside(self.studio.root, request.path_params["path"])
        if not path.is_file():
            raise StudioError(f"{excerpt(request.path_params['path'])} does not exist", 404)
        return FileResponse(path, headers={"Cache-Control": "no-store"})


async def _json(request: Request) -> dict:
    """The request's JSON object, at most MAX_JSON_BYTES, nested no deeper than JSON's parser
    goes without running out of stack."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_JSON_BYTES:
        raise StudioError(f"a request of {int(length):,} bytes refused: the limit is {MAX_JSON_BYTES:,}", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_JSON_BYTES:
            raise StudioError(f"a request over {MAX_JSON_BYTES:,} bytes refused", 413)
    try:
        body = json.loads(b"".join(chunks))
    except ValueError:
        raise StudioError("expected a JSON body") from None
    except RecursionError:
        raise StudioError("the JSON body is nested too deeply") from None
    if not isinstance(body, dict):
        raise StudioError("expected a JSON object")
    return body


def _text(body: dict, key: str) -> str:
    """The string at `key` of a request's JSON ("" if missing); any other type is refused."""
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise StudioError(f"{key}: expected a string, got {type(value).__name__} {excerpt(value)}")
    return value


def _index(text: str, what: str, status: int = 400) -> int:
    """A frame index given in a URL: digits only, at most MAX_INDEX_DIGITS of them."""
    if not (text.isascii() and text.isdigit()) or len(text) > MAX_INDEX_DIGITS:
        raise StudioError(f"{what}: expected a frame number (0, 1, ...), got {excerpt(text)}", status)
    return int(text)


def _positive(value, default: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return number if number > 0 else default
