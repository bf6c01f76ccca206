"""The ASGI application behind ``digitnet serve``: the HTTP API and the browser page.

Request path for an image: token (when one is set) -> body size, capped while it is received
-> content type -> (in a worker thread of the bounded queue) image header: format and pixel
count -> the reading service (``_reading.Reader``) -> the ``predict --json`` object. Every
refusal is JSON ``{"error": "..."}`` with a 4xx/503 status; a 500 means a bug.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ._limits import DEFAULT_MAX_PIXELS, UploadRejected, check_image_header
from ._queue import Busy, TimedOut, WorkQueue
from ._reading import Reader, ReadOptions

__all__ = ["ServeSettings", "create_app"]

log = logging.getLogger("digitnet.serve")

STATIC = Path(str(resources.files("digitnet.serve") / "static"))


@dataclass(frozen=True)
class ServeSettings:
    workers: int = 2
    max_upload_bytes: int = 10 * 1024 * 1024
    max_pixels: int = DEFAULT_MAX_PIXELS
    queue_limit: int = 32  # requests admitted at once (running + waiting); more get 503
    timeout_s: float = 10.0
    max_batch_files: int = 32
    token: str | None = None


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


_RAW_TYPES = ("application/octet-stream",)
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]+")


def _clean_name(name: str | None, default: str) -> str:
    """An upload's file name, safe to echo in one line of JSON or an error message."""
    if not name:
        return default
    name = _UNSAFE.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    return (name[:120] + "...") if len(name) > 120 else (name or default)


def _is_image_type(ctype: str) -> bool:
    return ctype.startswith("image/") or ctype in _RAW_TYPES


_IMAGE_BODY = {"schema": {"type": "string", "format": "binary"}}
_READ_BODY = {
    "requestBody": {
        "required": True,
        "description": "one image: multipart field `file`, or the raw bytes with an image "
        "content type (image/png, image/jpeg, ... or application/octet-stream)",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
            "image/png": _IMAGE_BODY,
            "image/jpeg": _IMAGE_BODY,
            "application/octet-stream": _IMAGE_BODY,
        },
    }
}
_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "description": "several images, each as a multipart field `file` (repeated)",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "array", "items": {"type": "string", "format": "binary"}}
                    },
                }
            }
        },
    }
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "not an image, a broken image, or a bad option"},
    401: {"description": "missing or wrong bearer token (only when the server has one)"},
    408: {"description": "the request body did not arrive within the request deadline"},
    413: {"description": "request body or image pixel count over the limit"},
    415: {"description": "not an image content type, or an image format not accepted"},
    503: {"description": "queue full or reading timed out; retry later"},
}

# Headers for the page and its assets: nothing may load from anywhere but this server (the
# page works offline, and a stray CDN reference fails loudly in the browser test).
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


_BEARER = HTTPBearer(
    auto_error=False,
    description="the token from the server's --token-file "
    "(required only when the server was started with one)",
)

# Query options of the read endpoints: ``digitnet predict``'s, with its defaults and ranges.
Single = Annotated[bool, Query(description="each image is one digit: no segmentation")]
TopK = Annotated[int, Query(ge=1, le=10, description="alternatives listed per digit")]
MinConf = Annotated[
    float | None,
    Query(
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        description="reject digits read below this probability: shown as ? in the text, "
        "marked low_confidence (without it, digits below 0.5 are only marked)",
    ),
]
Inputs = Annotated[
    bool, Query(description="add each digit's 28x28 network input as `input`, a PNG data URL")
]
Cred = Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)]


def create_app(reader: Reader, settings: ServeSettings | None = None) -> FastAPI:
    """The application for ``reader``'s model; ``settings`` default to the CLI's defaults."""
    s = settings or ServeSettings()
    queue = WorkQueue(s.workers, s.queue_limit, s.timeout_s)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        queue.shutdown()

    app = FastAPIOffline(
        title="digitnet",
        version=__version__,
        description="Read handwritten digits and numbers in images. Every reading is the JSON "
        "object `digitnet predict --json` prints for one image.",
        static_url="/static-docs",
        lifespan=lifespan,
    )
    app.state.queue = queue
    app.state.reader = reader
    app.state.settings = s

    # ------------------------------------------------------------------ errors as JSON

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, str(exc), exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            message = "no such endpoint (see /docs)"
        return _error(exc.status_code, message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _bad_option(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors():
            where = ".".join(str(x) for x in e.get("loc", ()) if x not in ("query", "body"))
            value = e.get("input")
            parts.append(
                f"{where}={value!r}: {e.get('msg', 'invalid')}"
                if where
                else str(e.get("msg", "invalid"))
            )
        return _error(400, "bad option: " + "; ".join(parts))

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error", exc_info=exc)
        return _error(500, "internal error (a bug in digitnet; the server log has details)")

    # ------------------------------------------------------------------ request helpers

    def authorize(cred: HTTPAuthorizationCredentials | None) -> None:
        if s.token is None:
            return
        challenge = {"WWW-Authenticate": "Bearer"}
        if cred is None:
            raise ApiError(401, "missing 'Authorization: Bearer <token>' header", challenge)
        if not hmac.compare_digest(cred.credentials.encode(), s.token.encode()):
            raise ApiError(401, "wrong bearer token", challenge)

    receiving = 0  # requests whose body is being received now (capped like the queue)

    async def body(request: Request) -> bytes:
        """The request body, capped at the upload limit and the request deadline. Bodies
        are received only while the queue has room, and at most ``queue_limit`` at once: the
        server holds at most 2 x queue_limit x max_upload_bytes of uploads at any time."""
        nonlocal receiving
        limit = s.max_upload_bytes
        too_large = f"request body over the upload limit of {limit:,} bytes (--max-upload-mb)"
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise ApiError(400, f"bad Content-Length header: {declared[:40]!r}")
            if int(declared) > limit:
                raise ApiError(413, too_large)
        if queue.pending >= queue.limit or receiving >= queue.limit:
            queue.refused += 1
            raise ApiError(
                503,
                f"server busy: {queue.pending} requests in progress (limit "
                f"{queue.limit}); retry later",
                {"Retry-After": "1"},
            )
        receiving += 1
        buf = bytearray()

        async def receive_all() -> None:
            async for chunk in request.stream():
                buf.extend(chunk)
                if len(buf) > limit:
                    raise ApiError(413, too_large)

        try:
            await asyncio.wait_for(receive_all(), s.timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(408, f"request body not received within {s.timeout_s:g} s") from None
        finally:
            receiving -= 1
        return bytes(buf)

    async def uploads(request: Request, many: bool) -> list[tuple[str, bytes | None, str | None]]:
        """``(name, data, error)`` per uploaded file; the request's content type decides how
        to read it (multipart field ``file``, or raw bytes)."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "multipart/form-data":
            data = await body(request)

            async def replay() -> dict[str, Any]:
                return {"type": "http.request", "body": data, "more_body": False}

            form = await Request(request.scope, replay).form(
                max_files=s.max_batch_files if many else 1, max_fields=s.max_batch_files
            )
            out: list[tuple[str, bytes | None, str | None]] = []
            try:
                for i, item in enumerate(form.getlist("file")):
                    default = f"<file {i}>" if many else "<upload>"
                    if not isinstance(item, UploadFile):
                        raise ApiError(400, "form field 'file' must be a file upload, not text")
                    name = _clean_name(item.filename, default)
                    part = (item.content_type or "").split(";")[0].strip().lower()
                    if part and not _is_image_type(part):
                        out.append((name, None, f"{name}: content type {part} is not an image"))
                        continue
                    out.append((name, await item.read(), None))
            finally:
                await form.close()
            if not out:
                raise ApiError(400, "multipart request has no field named 'file'")
            return out
        if many:
            raise ApiError(
                415,
                f"batch requests are multipart/form-data with one 'file' "
                f"field per image, not {ctype or 'no content type'}",
            )
        if not _is_image_type(ctype):
            raise ApiError(
                415,
                f"content type {ctype or '(none)'} is not an image: send "
                "multipart/form-data with a 'file' field, or the raw bytes with "
                "an image content type (image/png, ...)",
            )
        return [("<upload>", await body(request), None)]

    def read_one(name: str, data: bytes, options: ReadOptions) -> tuple[int, dict[str, Any]]:
        """Runs in a worker thread: header checks, then the reading service."""
        try:
            check_image_header(data, name, s.max_pixels)
        except UploadRejected as exc:
            return exc.status, reader.error_object(name, str(exc))
        ok, obj = reader.read(data, name, options)
        return (200 if ok else 400), obj

    def read_many(
        files: list[tuple[str, bytes | None, str | None]], options: ReadOptions
    ) -> list[dict[str, Any]]:
        results = []
        for name, data, err in files:
            if err is not None or data is None:
                results.append(reader.error_object(name, err or f"{name}: no data"))
            else:
                results.append(read_one(name, data, options)[1])
        return results

    async def in_queue(fn: Any, *args: Any) -> Any:
        try:
            return await queue.run(fn, *args)
        except Busy as exc:
            raise ApiError(503, str(exc), {"Retry-After": "1"}) from None
        except TimedOut as exc:
            raise ApiError(503, str(exc), {"Retry-After": "5"}) from None

    # ------------------------------------------------------------------ endpoints

    @app.post(
        "/v1/read",
        tags=["read"],
        openapi_extra=_READ_BODY,
        responses=_ERRORS,
        summary="read the digits in one image",
    )
    async def read(
        request: Request,
        cred: Cred,
        single: Single = False,
        top_k: TopK = 3,
        min_confidence: MinConf = None,
        inputs: Inputs = False,
    ) -> JSONResponse:
        """The object `digitnet predict --json` prints for one image: `path` (the upload's
        file name), `text`, `digits` (digit, confidence, box x/y/w/h in the image's pixels,
        top alternatives, low_confidence), `message` (why nothing was read) and `error`."""
        authorize(cred)
        ((name, data, err),) = await uploads(request, many=False)
        if err is not None or data is None:
            raise ApiError(415, err or "no data")
        options = ReadOptions(single, top_k, min_confidence, inputs)
        status, obj = await in_queue(read_one, name, data, options)
        if status != 200:
            return _error(status, obj["error"])
        return JSONResponse(obj)

    @app.post(
        "/v1/read/batch",
        tags=["read"],
        openapi_extra=_BATCH_BODY,
        responses=_ERRORS,
        summary="read several images in one request",
    )
    async def read_batch(
        request: Request,
        cred: Cred,
        single: Single = False,
        top_k: TopK = 3,
        min_confidence: MinConf = None,
        inputs: Inputs = False,
    ) -> JSONResponse:
        """`{"results": [...]}`: one `predict --json` object per file, in order; a file that
        cannot be read has its `error` set, and the others are still read."""
        authorize(cred)
        files = await uploads(request, many=True)
        options = ReadOptions(single, top_k, min_confidence, inputs)
        return JSONResponse({"results": await in_queue(read_many, files, options)})

    @app.get(
        "/v1/model",
        tags=["model"],
        responses={401: _ERRORS[401]},
        summary="the model that reads: name, accuracy, calibration, input",
    )
    async def model(cred: Cred) -> dict[str, Any]:
        authorize(cred)
        info = reader.model_info()
        info["limits"] = {
            "max_upload_bytes": s.max_upload_bytes,
            "max_pixels": s.max_pixels,
            "max_batch_files": s.max_batch_files,
            "queue_limit": s.queue_limit,
            "workers": s.workers,
            "timeout_s": s.timeout_s,
        }
        info["auth"] = s.token is not None
        return info

    @app.get("/healthz", tags=["service"], summary="liveness")
    async def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "queue": {"pending": queue.pending, "limit": queue.limit, "workers": queue.workers},
        }

    # ------------------------------------------------------------------ the page

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=_PAGE_HEADERS)

    @app.middleware("http")
    async def _page_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        if request.url.path.startswith("/static/"):
            response.headers.update(_PAGE_HEADERS)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
