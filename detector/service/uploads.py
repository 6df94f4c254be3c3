"""Uploads for POST /detect: untrusted bytes in, an image or a clean client error out, a bounded queue.

An HTTP upload can be anything: empty, garbage, truncated, or a small file
whose header declares a gigapixel image (a "decompression bomb"). Everything
here fails with an ``UploadError`` carrying the HTTP status to answer, so the
service never turns bad input into a 500 or an out-of-memory kill: the body is
read with a cap (never trusting Content-Length) and a deadline, the pixel size
is read from the header before decoding (``detector.images``), and a large
photo is decoded small.

``UploadQueue`` bounds what uploads may hold at once: a few are judged at a
time on their own threads, a few more wait with their bodies read, and the
rest are answered 503 with Retry-After before their bodies are read at all.
The camera stream runs beside them on its own thread and never waits for them.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from detector.images import MAX_PIXELS, ImageError, Photo, load_photo
from detector.service.schemas import DetectOut, Error

MULTIPART_SLACK = 64 * 1024
"""Room for the multipart envelope (boundaries, part headers) on top of the image limit."""
ACCEPTED_TYPES = ("image/jpeg", "image/png", "image/bmp", "image/webp", "application/octet-stream")
ACCEPTED_FORMATS = ("JPEG", "PNG", "BMP", "WEBP")
BODY_SECONDS = 30.0
"""Longest a client may take to send its upload; a slower one holds a slot others could use (408)."""

T = TypeVar("T")


class UploadError(Exception):
    """A client error; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def check_content_type(content_type: str | None) -> None:
    """415 for a declared type that is not an image; no type at all is allowed (curl --data-binary)."""
    if not content_type:
        return
    base = content_type.split(";", 1)[0].strip().lower()
    if base.startswith("image/") or base in ACCEPTED_TYPES:
        return
    raise UploadError(415, f"unsupported content type {base!r}: send an image (JPEG, PNG, BMP or WebP) with its "
                           "image/* type, or as multipart field 'image' (curl -F image=@photo.jpg)")


def decode_photo(data: bytes, max_pixels: int = MAX_PIXELS) -> Photo:
    """The upload's pixels, checked from the header before decoding, at most ``MAX_SIDE`` large;
    or an UploadError (400, 413 or 415)."""
    if not data:
        raise UploadError(400, "empty upload: send the image as the request body or as multipart field 'image'")
    try:
        photo = load_photo(data, max_pixels=max_pixels)
    except ImageError as err:
        if err.too_large:
            raise UploadError(413, err.message) from None
        if err.message.startswith("not a readable image"):
            raise UploadError(415, "not a supported image (JPEG, PNG, BMP or WebP)") from None
        raise UploadError(400, err.message) from None
    if photo.format not in ACCEPTED_FORMATS:
        raise UploadError(415, f"not a supported image ({photo.format}): send JPEG, PNG, BMP or WebP")
    return photo


def heap_trimmer() -> Callable[[], None]:
    """A call that hands freed heap memory back to the system (glibc's ``malloc_trim``), or one that does nothing.

    Judging a large photo allocates and frees several hundred MB (MTCNN's finest
    pyramid level); glibc keeps freed memory for reuse, so after a burst of
    uploads a service idling at 0.4 GB stayed at over 1 GB.
    """
    name = ctypes.util.find_library("c")
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    return (lambda: trim(0)) if trim is not None else (lambda: None)


class UploadQueue:
    """At most ``workers`` uploads judged at once and ``waiting`` more held; the rest are turned away.

    ``admit`` is asked before the body is read, so a burst of large uploads
    costs at most ``workers + waiting`` bodies of memory.
    """

    def __init__(self, workers: int = 1, waiting: int = 8) -> None:
        self.workers, self.capacity = workers, workers + waiting
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="upload")
        self.trim = heap_trimmer()
        self._lock = threading.Lock()
        self._held = 0
        self._seconds = 0.5
        """A running average of one upload's time, for Retry-After."""

    def admit(self) -> None:
        """Take a place, or an UploadError 503 saying when to come back."""
        with self._lock:
            if self._held >= self.capacity:
                retry = max(1, math.ceil(self._seconds * self._held / self.workers))
                raise UploadError(503, f"busy: {self._held} uploads in hand; retry in {retry} s",
                                  headers={"Retry-After": str(retry)})
            self._held += 1

    def release(self) -> None:
        with self._lock:
            self._held -= 1

    @property
    def held(self) -> int:
        return self._held

    async def run(self, work: Callable[[], T]) -> T:
        """``work`` on an upload thread, timed for Retry-After."""
        start = time.perf_counter()

        def work_then_trim() -> T:
            try:
                return work()
            finally:
                self.trim()

        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, work_then_trim)
        finally:
            self._seconds = 0.8 * self._seconds + 0.2 * (time.perf_counter() - start)

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


async def read_upload(request: Request, limit: int, seconds: float = BODY_SECONDS) -> bytes:
    """The image bytes (see ``receive_upload``), or 408 when the client takes longer than ``seconds`` to send them."""
    try:
        return await asyncio.wait_for(receive_upload(request, limit), seconds)
    except asyncio.TimeoutError:
        raise UploadError(408, f"the upload took longer than {seconds:.0f} s to arrive") from None


async def capped(request: Request, cap: int, limit: int) -> AsyncIterator[bytes]:
    """The body's chunks as they arrive, ended with a 413 once more than ``cap`` bytes came (Content-Length
    is only a claim, though a claim over the cap is refused before anything is read)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise UploadError(413, f"upload too large: {declared} bytes (limit {limit})")
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > cap:
            raise UploadError(413, f"upload too large (limit {limit} bytes)")
        yield chunk


async def receive_upload(request: Request, limit: int) -> bytes:
    """The image bytes, from a multipart field or the raw body, never over ``limit``, declared as an image (or untyped).

    A multipart body goes straight into the parser chunk by chunk, so an upload is held in memory about once.
    """
    ctype = request.headers.get("content-type", "")
    if not ctype.lower().startswith("multipart/form-data"):
        check_content_type(ctype)
        body = bytearray()
        async for chunk in capped(request, limit, limit):
            body += chunk
        return bytes(body)
    try:
        parser = MultiPartParser(request.headers, capped(request, limit + MULTIPART_SLACK, limit), max_files=4, max_fields=16)
        form = await parser.parse()
    except MultiPartException as err:
        raise UploadError(400, f"bad multipart body: {err.message}") from None
    try:
        files = [v for v in form.values() if isinstance(v, UploadFile)]
        field = form.get("image")  # any single file field will do when none is called 'image'
        upload = field if isinstance(field, UploadFile) else (files[0] if files and field is None else None)
        if upload is None:
            raise UploadError(400, "multipart upload needs a file field named 'image'")
        data = await upload.read()
    finally:
        await form.close()
    if len(data) > limit:
        raise UploadError(413, f"image too large: {len(data)} bytes (limit {limit})")
    check_content_type(upload.content_type)
    return data


_BINARY = {"schema": {"type": "string", "format": "binary"}}
OPENAPI_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["image"], "properties": {"image": _BINARY["schema"]}}},
    "image/jpeg": _BINARY, "image/png": _BINARY, "application/octet-stream": _BINARY,
}}}
"""POST /detect reads its body itself (to cap it), so FastAPI cannot infer this for /docs."""
OPENAPI_RESPONSES: dict[int | str, dict] = {
    200: {"model": DetectOut},
    400: {"model": Error, "description": "empty, corrupt or truncated image; bad multipart body"},
    413: {"model": Error, "description": "over --max-upload bytes, or too many pixels"},
    415: {"model": Error, "description": "not an image type"},
    408: {"model": Error, "description": "the body took over 30 s to arrive"},
    503: {"model": Error, "description": "too many uploads in hand: retry after the Retry-After header's seconds"},
}
