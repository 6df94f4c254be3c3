"""``python -m detector serve``: the detector as an HTTP service.

One ``Pipeline`` is shared by the stream worker (``detector.service.workers``) and the
uploads, behind a fair lock: the models are loaded once and the two never run
them at the same time, which onnxruntime and dlib sessions are not promised to
survive. Blocking work runs in the threadpool so the event loop keeps serving
the page, the stream and ``/health`` while a frame is being judged.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.resources
import json
import logging
import os
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import numpy as np
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from detector.cli import FLOAT_HELP, fail
from detector.demo import make_demo_clip
from detector.pipeline import Pipeline, PipelineConfig, float_nets
from detector.service.auth import BearerAuth
from detector.service.uploads import OPENAPI_BODY, OPENAPI_RESPONSES, UploadError, decode_image, read_upload
from detector.service.workers import FairLock, Metrics, StreamWorker, public_name, stats_body
from detector.sources import Source, SourceError, open_source
from detector.types import Face

DEFAULT_MAX_UPLOAD = 10 * 1024 * 1024
PAGE = importlib.resources.files("detector.service") / "page.html"
"""The live page, package data like the nets, so an installed service finds it from any folder."""

def mjpeg_part(jpeg: bytes) -> bytes:
    """One part of multipart/x-mixed-replace: browsers replace the <img> with each part as it arrives."""
    return b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n" % (len(jpeg), jpeg)


def create_app(pipeline: Pipeline, source: Source | None = None, token: str | None = None,
               max_upload: int = DEFAULT_MAX_UPLOAD) -> FastAPI:
    """The service; ``source`` (an opened ``detector.sources.Source``) is streamed when given."""
    lock, metrics, started = FairLock(), Metrics(), time.time()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.closing = False
        app.state.worker = StreamWorker(source, pipeline, lock, metrics) if source is not None else None
        if app.state.worker is not None:
            app.state.worker.start()
        try:
            yield
        finally:
            app.state.closing = True
            if app.state.worker is not None:
                await run_in_threadpool(app.state.worker.stop)

    # FastAPIOffline serves the /docs assets itself: a door-camera box often has no internet for a CDN
    app = FastAPIOffline(title="Face-mask detector", version="0.1.0", lifespan=lifespan,
                  description="Mask worn correctly, incorrectly or not at all, for uploads and a live stream.")
    app.state.worker, app.state.closing, app.state.metrics = None, False, metrics
    if token:
        app.add_middleware(BearerAuth, token=token)

    _error_handlers(app)
    _upload_routes(app, pipeline, lock, metrics, max_upload)
    _info_routes(app, metrics, started)
    _stream_routes(app, metrics)
    return app


def _error_handlers(app: FastAPI) -> None:
    """Every error is JSON ``{"error": ...}``, never an HTML page or a traceback."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": "internal error"}, status_code=500)


def _upload_routes(app: FastAPI, pipeline: Pipeline, lock: FairLock, metrics: Metrics, max_upload: int) -> None:
    """POST /detect: one image judged on the shared pipeline, taking turns with the stream."""

    def analyse(image: np.ndarray) -> list[Face]:
        with lock:  # a large upload is searched scaled down (PipelineConfig.search_side)
            return pipeline.analyse(image, still=True)

    @app.post("/detect", openapi_extra=OPENAPI_BODY, responses=OPENAPI_RESPONSES,
              summary="Judge every face in one uploaded image")
    async def detect(request: Request) -> JSONResponse:
        """Image as multipart field ``image`` or as the raw body -> faces, image size and time taken."""
        start = time.perf_counter()
        try:
            data = await read_upload(request, max_upload)
            image = await run_in_threadpool(decode_image, data)
        except UploadError as err:
            metrics.uploads.labels(status=str(err.status)).inc()
            return JSONResponse({"error": err.message}, status_code=err.status)
        faces = await run_in_threadpool(analyse, image)
        seconds = time.perf_counter() - start
        metrics.uploads.labels(status="200").inc()
        metrics.upload_latency.observe(seconds)
        for f in faces:
            metrics.faces.labels(label=f.label or "unknown", origin="upload").inc()
        h, w = image.shape[:2]
        return JSONResponse({"faces": [f.to_json() for f in faces], "width": w, "height": h, "ms": round(seconds * 1000, 1)})


def _info_routes(app: FastAPI, metrics: Metrics, started: float) -> None:
    """The page, health, counts and Prometheus metrics."""

    @app.get("/", response_class=HTMLResponse, summary="Live page: annotated stream, counts, compliance")
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE.read_text(encoding="utf-8"), headers={"Cache-Control": "no-store"})

    @app.get("/health", summary="Liveness; open even when a token is set")
    async def health() -> dict:
        worker = app.state.worker
        return {"status": "ok", "stream": worker.state if worker else "off",
                "frames": worker.frames_done if worker else 0, "uptime_s": round(time.time() - started, 1)}

    @app.get("/stats", summary="Counts per label (newest frame and since start) and compliance share")
    async def stats() -> dict:
        worker = app.state.worker
        if worker is not None:
            return worker.snapshot()
        return stats_body("off", None, 0, 0.0, {}, {}, [])

    @app.get("/metrics", summary="Prometheus text exposition")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def _follow(app: FastAPI, queue: asyncio.Queue) -> AsyncIterator[Any]:
    """Items from a hub queue; None once a second so callers notice shutdown."""
    while not app.state.closing:
        try:
            yield await asyncio.wait_for(queue.get(), 1.0)
        except asyncio.TimeoutError:
            yield None


@contextmanager
def _viewer(hub, size: int, metrics: Metrics) -> Iterator[asyncio.Queue]:
    """A subscription to a hub for one client, counted in the metrics while it lasts."""
    queue = hub.subscribe(size)
    metrics.clients.inc()
    try:
        yield queue
    finally:
        hub.unsubscribe(queue)
        metrics.clients.dec()


def _stream_routes(app: FastAPI, metrics: Metrics) -> None:
    """MJPEG and server-sent events fed by the stream worker; 404 when there is no stream."""

    def live_worker() -> StreamWorker:
        if app.state.worker is None:
            raise StarletteHTTPException(404, "no stream: start the server with --source or --demo")
        return app.state.worker

    @app.get("/stream", summary="MJPEG of the annotated source (multipart/x-mixed-replace)")
    async def stream() -> StreamingResponse:
        worker = live_worker()

        async def parts() -> AsyncIterator[bytes]:
            with _viewer(worker.frames, 1, metrics) as queue:
                jpeg = worker.jpeg
                if jpeg:  # the newest frame at once, then each new one
                    yield mjpeg_part(jpeg)
                async for item in _follow(app, queue):
                    if item:
                        yield mjpeg_part(item)

        return StreamingResponse(parts(), media_type="multipart/x-mixed-replace; boundary=frame",
                                 headers={"Cache-Control": "no-store"})

    @app.get("/events", summary="Server-sent events: a tracked face's verdict changed")
    async def events() -> StreamingResponse:
        worker = live_worker()

        async def lines() -> AsyncIterator[str]:
            with _viewer(worker.events, 100, metrics) as queue:
                yield "retry: 2000\n\n"
                quiet = 0
                async for event in _follow(app, queue):
                    if event is None:
                        quiet += 1
                        if quiet % 15 == 0:
                            yield ": keep-alive\n\n"
                        continue
                    yield f"event: verdict\ndata: {json.dumps(event)}\n\n"

        return StreamingResponse(lines(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m detector serve", description="Serve the face-mask detector over HTTP.")
    p.add_argument("--source", help="stream this: webcam index, video file, image, folder or stream URL (default: none)")
    p.add_argument("--demo", action="store_true", help="stream the embedded demo clip")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")
    p.add_argument("--token", help="require 'Authorization: Bearer TOKEN' (or ?token=) on every route but /health")
    p.add_argument("--max-upload", type=int, default=DEFAULT_MAX_UPLOAD, metavar="BYTES",
                   help=f"largest image POST /detect accepts (default: {DEFAULT_MAX_UPLOAD} = 10 MiB)")
    p.add_argument("--float", action="store_true", help=FLOAT_HELP)
    return p


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a busy port is a one-line error before the models load."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def main(argv: list[str] | None = None) -> int:
    """The ``serve`` subcommand; every expected failure is one ``error:`` line and exit status 2."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    for name in ("python_multipart", "multipart"):  # a line per malformed upload: clients' errors, not ours
        logging.getLogger(name).setLevel(logging.ERROR)
    # FFmpeg's own lines ("moov atom not found") would bury the one-line error; sources.py logs losses itself.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")
    if args.source and args.demo:
        return fail("use either --source or --demo, not both")
    if args.token is not None and not args.token.strip():
        return fail("--token must not be empty")
    if args.max_upload <= 0:
        return fail("--max-upload must be a positive number of bytes")
    if not 0 <= args.port <= 65535:
        return fail(f"--port must be between 0 and 65535, not {args.port}")
    try:
        sock = bind(args.host, args.port)
    except OSError as err:
        return fail(f"cannot listen on {args.host}:{args.port}: {err.strerror or err}")
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # uvicorn re-raises it after shutdown: exit cleanly, not killed
    try:
        return _serve(args, sock)
    except KeyboardInterrupt:  # Ctrl-C while loading, or re-raised by uvicorn after a clean shutdown
        return 0
    finally:
        sock.close()


def _interrupt(sig: int, frame: Any) -> None:
    """SIGTERM as Ctrl-C: the same clean shutdown and exit status 0 under a process manager."""
    raise KeyboardInterrupt


def _serve(args: argparse.Namespace, sock: socket.socket) -> int:
    """Open the source, load the models, serve; the demo clip's temp folder goes at the end."""
    clip = None
    try:
        source = open_source(args.source) if args.source else None
        pipeline = Pipeline(PipelineConfig(**float_nets()) if args.float else None)
        if args.demo:
            clip = make_demo_clip(pipeline)
            source = open_source(str(clip))
    except (SourceError, FileNotFoundError, ValueError) as err:
        return fail(str(err))
    try:
        return _run_server(args, sock, pipeline, source)
    finally:
        if clip is not None:
            shutil.rmtree(clip.parent, ignore_errors=True)


def _run_server(args: argparse.Namespace, sock: socket.socket, pipeline: Pipeline, source: Source | None) -> int:
    app = create_app(pipeline, source, token=args.token, max_upload=args.max_upload)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            app.state.closing = True  # ends /stream and /events so shutdown does not wait on them
            super().handle_exit(sig, frame)

    if not args.token and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {args.host} without --token: anyone who can reach it can use it", file=sys.stderr)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    what = f"streaming {public_name(source.name)}" if source is not None else "no stream (uploads only)"
    print(f"serving on http://{shown}:{port}/ ({what}; Ctrl-C to stop)", file=sys.stderr, flush=True)
    server = Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=3))
    server.run(sockets=[sock])
    return 0 if server.started else 1
