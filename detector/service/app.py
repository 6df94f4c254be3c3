"""The service's routes: the live page, uploads, the stream, stats, health and metrics.

The stream worker (``detector.service.workers``) and the uploads
(``detector.service.uploads``) share one loaded ``Pipeline`` and run beside
each other on their own threads; blocking work never runs on the event loop,
which keeps serving the page, the stream and ``/health`` while a frame or an
upload is being judged. Every error is JSON ``{"error": ...}``.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from detector.pipeline import Pipeline, PipelineConfig
from detector.service.api import people_routes
from detector.service.auth import BearerAuth
from detector.service.config import CameraConfig, PrivacyConfig
from detector.service.history import History
from detector.service.metrics import Metrics
from detector.service.options import DEFAULT_MAX_UPLOAD
from detector.service.security import LOOPBACK_NAMES, SecurityHeaders, page_policy
from detector.service.uploads import OPENAPI_BODY, OPENAPI_RESPONSES, UploadError, UploadQueue, decode_photo, read_upload
from detector.service.view import LiveView
from detector.service.workers import DOWN_STATES, CameraWorker, public_name, stats_body
from detector.sources import Source
from detector.types import Face

PAGE = importlib.resources.files("detector.service") / "page.html"
"""The live page, package data like the nets, so an installed service finds it from any folder."""


def mjpeg_part(jpeg: bytes) -> bytes:
    """One part of multipart/x-mixed-replace: browsers replace the <img> with each part as it arrives."""
    return b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n" % (len(jpeg), jpeg)


@dataclass
class Camera:
    """One camera of the site: its settings and its opened source."""

    config: CameraConfig
    source: Source


def create_app(pipeline: Pipeline, source: Source | None = None, token: str | None = None,
               max_upload: int = DEFAULT_MAX_UPLOAD, hosts: list[str] | None = None,
               uploads: UploadQueue | None = None, cameras: list[Camera] | None = None,
               history: History | None = None, outputs: list | None = None,
               privacy: PrivacyConfig | None = None, metrics: Metrics | None = None) -> FastAPI:
    """The service; each camera (or ``source``, a one-camera site named ``main``) is watched by its own worker.

    ``pipeline`` judges uploads as photos; each camera runs it with its own smallest face (video's default:
    ``PipelineConfig.video``), sharing the loaded models. ``hosts`` are the Host names answered (default:
    this machine's loopback names only); ``uploads`` bounds the uploads judged and held at once;
    ``history`` keeps people (default: in memory); ``outputs`` get every person and verdict (MQTT, webhook).
    """
    metrics, started = metrics or Metrics(), time.time()
    uploads = uploads or UploadQueue()
    history = history or History()
    privacy = privacy or PrivacyConfig()
    cameras = list(cameras or []) + ([Camera(CameraConfig("main", source.name), source)] if source is not None else [])
    page = PAGE.read_text(encoding="utf-8")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.closing = False
        app.state.workers = {c.config.name: camera_worker(c, pipeline, metrics, history, outputs or [], privacy)
                             for c in cameras}
        for output in outputs or []:
            output.start()
        for worker in app.state.workers.values():
            worker.start()
        try:
            yield
        finally:
            app.state.closing = True
            for worker in app.state.workers.values():
                await run_in_threadpool(worker.stop)
            for output in outputs or []:  # after the cameras: the people still in view go out too
                await run_in_threadpool(output.stop)
            await run_in_threadpool(uploads.close)

    # FastAPIOffline serves the /docs assets itself: a door-camera box often has no internet for a CDN
    app = FastAPIOffline(title="Face-mask detector", version="0.1.0", lifespan=lifespan,
                         description="Mask worn correctly, incorrectly or not at all, for uploads and live cameras.")
    app.state.workers, app.state.closing, app.state.metrics, app.state.history = {}, False, metrics, history
    if token:
        app.add_middleware(BearerAuth, token=token)
    app.add_middleware(SecurityHeaders, page_csp=page_policy(page))
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts or list(LOOPBACK_NAMES))

    _error_handlers(app)
    _upload_routes(app, pipeline, uploads, metrics, max_upload)
    _info_routes(app, metrics, started, page)
    _stream_routes(app, metrics)
    people_routes(app, history)
    return app


def camera_worker(camera: Camera, pipeline: Pipeline, metrics: Metrics, history: History, outputs: list,
                  privacy: PrivacyConfig) -> CameraWorker:
    """A camera's worker: video searched from its own smallest face, its view blurred where the site asks."""
    if not camera.source.stills:
        pipeline = pipeline.with_faces(PipelineConfig.video(camera.config.min_face).faces)
    view = LiveView(camera.config.name, metrics, history, outputs, blur=privacy.blur_faces)
    return CameraWorker(camera.config.name, camera.source, pipeline, view, fps_cap=camera.config.fps,
                        keep_crops=privacy.snapshots and any(getattr(o, "wants_snapshots", False) for o in outputs))


def _error_handlers(app: FastAPI) -> None:
    """Every error is JSON ``{"error": ...}``, never an HTML page or a traceback."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": "internal error"}, status_code=500)


def _upload_routes(app: FastAPI, pipeline: Pipeline, uploads: UploadQueue, metrics: Metrics, max_upload: int) -> None:
    """POST /detect: one image judged on an upload thread, beside the stream, never ahead of it."""

    def judge(data: bytes) -> tuple[list[Face], int, int, float]:
        photo = decode_photo(data)  # a large upload is decoded small; boxes go back to its pixels
        return pipeline.analyse(photo.image, still=True), photo.width, photo.height, photo.scale

    @app.post("/detect", openapi_extra=OPENAPI_BODY, responses=OPENAPI_RESPONSES,
              summary="Judge every face in one uploaded image")
    async def detect(request: Request) -> JSONResponse:
        """Image as multipart field ``image`` or as the raw body -> faces, image size and time taken."""
        start = time.perf_counter()
        try:
            uploads.admit()  # before the body is read: a refused upload costs no memory
        except UploadError as err:
            return upload_error(err, metrics)
        try:
            data = await read_upload(request, max_upload)
            faces, width, height, scale = await uploads.run(lambda: judge(data))
        except UploadError as err:
            return upload_error(err, metrics)
        finally:
            uploads.release()
        seconds = time.perf_counter() - start
        metrics.uploads.labels(status="200").inc()
        metrics.upload_latency.observe(seconds)
        for f in faces:
            metrics.faces.labels(camera="", label=f.label or "unknown", origin="upload").inc()
        return JSONResponse({"faces": [f.to_json(scale) for f in faces], "width": width, "height": height,
                             "ms": round(seconds * 1000, 1)})


def upload_error(err: UploadError, metrics: Metrics) -> JSONResponse:
    metrics.uploads.labels(status=str(err.status)).inc()
    return JSONResponse({"error": err.message}, status_code=err.status, headers=err.headers)


def _info_routes(app: FastAPI, metrics: Metrics, started: float, page: str) -> None:
    """The page, health, counts and Prometheus metrics."""

    @app.get("/", response_class=HTMLResponse, summary="Live page: annotated stream, counts, compliance")
    async def home() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    @app.get("/health", summary="200 while the service runs; 'degraded' and the cameras that are down when one is")
    async def health() -> dict:
        workers = list(app.state.workers.values())
        state = workers[0].state if workers else "off"
        down = [public_name(w.source.name) for w in workers if w.state in DOWN_STATES]
        body = {"status": "degraded" if down else "ok", "stream": state, "down": down,
                "frames": sum(w.frames_done for w in workers), "uptime_s": round(time.time() - started, 1)}
        if workers:
            body["source_status"] = workers[0].status.as_dict()
            body["cameras"] = {w.camera: w.state for w in workers}
        return body

    @app.get("/stats", summary="Faces per label (newest frame, since start), people today, compliance")
    async def stats() -> dict:
        return stats_body(list(app.state.workers.values()), app.state.history)

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
    """MJPEG and server-sent events fed by the camera workers; 404 for a camera that is not there.
    ``/stream`` and ``/events`` are the first camera's (a one-camera site's only one)."""

    def worker_named(name: str | None) -> CameraWorker:
        workers = app.state.workers
        if not workers:
            raise StarletteHTTPException(404, "no stream: start the server with --source, --demo or --config")
        if name is None:
            return next(iter(workers.values()))
        if name not in workers:
            raise StarletteHTTPException(404, f"no camera named {name!r} (cameras: {', '.join(workers)})")
        return workers[name]

    @app.get("/stream", summary="MJPEG of the first camera, annotated (multipart/x-mixed-replace)")
    async def stream() -> StreamingResponse:
        return mjpeg(app, worker_named(None), metrics)

    @app.get("/cameras/{name}/stream", summary="MJPEG of one camera, annotated")
    async def camera_stream(name: str) -> StreamingResponse:
        return mjpeg(app, worker_named(name), metrics)

    @app.get("/events", summary="Server-sent events of the first camera: a person's verdict settled or changed")
    async def events() -> StreamingResponse:
        return verdict_events(app, worker_named(None), metrics)

    @app.get("/cameras/{name}/events", summary="Server-sent events of one camera")
    async def camera_events(name: str) -> StreamingResponse:
        return verdict_events(app, worker_named(name), metrics)


def mjpeg(app: FastAPI, worker: CameraWorker, metrics: Metrics) -> StreamingResponse:
    """The camera's annotated frames as they come, the newest at once (a slow viewer skips frames)."""

    async def parts() -> AsyncIterator[bytes]:
        with _viewer(worker.view.frames, 1, metrics) as queue:
            jpeg = worker.view.jpeg
            if jpeg:
                yield mjpeg_part(jpeg)
            async for item in _follow(app, queue):
                if item:
                    yield mjpeg_part(item)

    return StreamingResponse(parts(), media_type="multipart/x-mixed-replace; boundary=frame",
                             headers={"Cache-Control": "no-store"})


def verdict_events(app: FastAPI, worker: CameraWorker, metrics: Metrics) -> StreamingResponse:
    """The camera's verdict events as server-sent events, with a keep-alive comment every 15 s."""

    async def lines() -> AsyncIterator[str]:
        with _viewer(worker.view.events, 100, metrics) as queue:
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
