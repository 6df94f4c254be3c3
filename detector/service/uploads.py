"""Reading an upload for POST /detect: untrusted bytes in, an image or a clean client error out.

An HTTP upload can be anything: empty, garbage, truncated, or a small file
whose header declares a gigapixel image (a "decompression bomb" that would make
the decoder allocate gigabytes). Everything here fails with an ``UploadError``
carrying the HTTP status to answer, so the service never turns bad input into
a 500 or an out-of-memory kill: the body is read with a cap (never trusting
Content-Length), and only formats whose pixel size can be read from the header
before decoding are accepted.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator

import cv2
import numpy as np
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

MAX_PIXELS = 40_000_000
"""Largest image decoded (about 8000 x 5000); a bigger declared size is refused unread."""
MULTIPART_SLACK = 64 * 1024
"""Room for the multipart envelope (boundaries, part headers) on top of the image limit."""
ACCEPTED_TYPES = ("image/jpeg", "image/png", "image/bmp", "image/webp", "application/octet-stream")


class UploadError(Exception):
    """A client error; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def check_content_type(content_type: str | None) -> None:
    """415 for a declared type that is not an image; no type at all is allowed (curl --data-binary)."""
    if not content_type:
        return
    base = content_type.split(";", 1)[0].strip().lower()
    if base.startswith("image/") or base in ACCEPTED_TYPES:
        return
    raise UploadError(415, f"unsupported content type {base!r}: send an image (JPEG, PNG, BMP or WebP) with its "
                           "image/* type, or as multipart field 'image' (curl -F image=@photo.jpg)")


def image_format(data: bytes) -> str | None:
    """The format named by the magic bytes, or None for anything we do not decode."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"BM"):
        return "bmp"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def declared_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """(width, height) from the header without decoding; None when the header is cut short."""
    try:
        if fmt == "png":
            return struct.unpack(">II", data[16:24]) if data[12:16] == b"IHDR" else None
        if fmt == "bmp":
            w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)
        if fmt == "webp":
            return _webp_size(data)
        return _jpeg_size(data)
    except struct.error:
        return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walk the JPEG segments up to the first start-of-frame marker."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        i += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    if chunk == b"VP8L":
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    return None


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """BGR uint8 image from upload bytes, or an UploadError (400, 413 or 415)."""
    if not data:
        raise UploadError(400, "empty upload: send the image as the request body or as multipart field 'image'")
    fmt = image_format(data)
    if fmt is None:
        raise UploadError(415, "not a supported image (JPEG, PNG, BMP or WebP)")
    size = declared_size(data, fmt)
    if size is None:
        raise UploadError(400, f"broken {fmt.upper()} header")
    w, h = size
    if w <= 0 or h <= 0:
        raise UploadError(400, f"{fmt.upper()} header declares an empty image ({w}x{h})")
    if w * h > max_pixels:
        raise UploadError(413, f"image too large: {w}x{h} pixels (limit {max_pixels} pixels)")
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise UploadError(400, f"could not decode the {fmt.upper()} image (corrupt or truncated)")
    return image


async def read_upload(request: Request, limit: int) -> bytes:
    """The image bytes, from a multipart field or the raw body, never over ``limit``, declared as an image (or untyped)."""
    ctype = request.headers.get("content-type", "")
    multipart = ctype.lower().startswith("multipart/form-data")
    if not multipart:
        check_content_type(ctype)
    cap = limit + (MULTIPART_SLACK if multipart else 0)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise UploadError(413, f"upload too large: {declared} bytes (limit {limit})")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise UploadError(413, f"upload too large (limit {limit} bytes)")
    if not multipart:
        return bytes(body)

    async def chunks() -> AsyncIterator[bytes]:
        yield bytes(body)

    try:
        form = await MultiPartParser(request.headers, chunks(), max_files=4, max_fields=16).parse()
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
_FACE = {"type": "object", "properties": {
    "box": {"type": "array", "items": {"type": "number"}, "description": "x1, y1, x2, y2 in the image's pixels"},
    "label": {"type": "string", "enum": ["mask", "incorrect", "no_mask"]}, "score": {"type": "number"},
    "nose_visible": {"type": "boolean"}, "mouth_visible": {"type": "boolean"}, "track": {"type": "integer", "nullable": True},
}}
_ERROR = {"content": {"application/json": {"schema": {"type": "object", "properties": {"error": {"type": "string"}}}}}}
OPENAPI_RESPONSES: dict[int | str, dict] = {
    200: {"content": {"application/json": {"schema": {"type": "object", "properties": {
        "faces": {"type": "array", "items": _FACE}, "width": {"type": "integer"}, "height": {"type": "integer"},
        "ms": {"type": "number", "description": "time to answer, reading and decoding included"}}}}}},
    400: {"description": "empty, corrupt or truncated image; bad multipart body", **_ERROR},
    413: {"description": "over --max-upload bytes, or too many pixels", **_ERROR},
    415: {"description": "not an image type", **_ERROR},
}
