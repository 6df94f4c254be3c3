"""``python -m detector serve``: arguments, the listening socket, uvicorn with limits, and how it stops.

Every expected failure (a busy port, a bad source, an exposed address without
a token) is one ``error:`` line and exit status 2, said before the models
load. SIGINT, SIGTERM and SIGHUP each shut the service down cleanly (viewers
let go, the stream's source released, uploads in hand finished) and the
status is 128 + the signal, as for the command line.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

import uvicorn

from detector.console import fail
from detector.run import Stop, raise_stop, signals_handled
from detector.service.app import Camera, create_app
from detector.service.config import NAME, ConfigError, SiteConfig, load_site, one_camera
from detector.service.history import History
from detector.service.limits import (
    KEEP_ALIVE_SECONDS,
    MAX_HEAD_BYTES,
    connection_limit,
    guarded_protocol,
    quiet_accept_floods,
    raise_descriptor_limit,
)
from detector.service.metrics import Metrics
from detector.service.mqtt import MqttOutput
from detector.service.security import allowed_hosts, is_loopback
from detector.service.uploads import UploadQueue
from detector.service.webhook import WebhookOutput
from detector.service.workers import public_name
from detector.sources import SourceError, open_source


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


def check(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments, in one line, or None."""
    if sum(bool(x) for x in (args.source, args.demo, args.config)) > 1:
        return "use one of --source, --demo or --config"
    if args.node is not None and not NAME.match(args.node):
        return f"--node must be 1-64 letters, digits, '-' or '_', not {args.node!r}"
    if args.token is not None and not args.token.strip():
        return "--token must not be empty"
    if not args.token and not args.insecure and not is_loopback(args.host):
        return (f"--host {args.host} lets other machines in: give --token (or --insecure to serve "
                "anyone who can reach it)")
    return None


def serve(args: argparse.Namespace) -> int:
    """The ``serve`` subcommand (its options: ``detector.service.options``); every expected failure is one
    ``error:`` line and exit status 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    for name in ("python_multipart", "multipart"):  # a line per malformed upload: clients' errors, not ours
        logging.getLogger(name).setLevel(logging.ERROR)
    problem = check(args)
    if problem:
        return fail(problem)
    try:
        sock = bind(args.host, args.port)
    except OSError as err:
        return fail(f"cannot listen on {args.host}:{args.port}: {err.strerror or err}")
    try:  # a stop signal while the models load ends at once, with the signal's status
        with signals_handled(raise_stop):
            return _serve(args, sock)
    except Stop as stop:  # also the signal uvicorn raises again once it has shut down cleanly
        return stop.status
    finally:
        sock.close()


def _serve(args: argparse.Namespace, sock: socket.socket) -> int:
    """Read the site, open its cameras, load the models, serve; the demo clip's temp folder goes at the end."""
    from detector.pipeline import Pipeline, PipelineConfig, float_nets
    from detector.synth.demo import make_demo_clip

    clip = None
    try:
        site = load_site(args.config) if args.config else one_camera(args.source) if args.source else None
        if site is not None and args.node:
            site.node = args.node
        cameras = open_cameras(site) if site is not None else []
        pipeline = Pipeline(PipelineConfig(**float_nets()) if args.float else None)
        if args.demo:
            clip = make_demo_clip(pipeline)
            site = one_camera(str(clip))
            cameras = open_cameras(site)
    except (ConfigError, SourceError, FileNotFoundError, ValueError) as err:
        return fail(str(err))
    try:
        return _run_server(args, sock, pipeline, site, cameras)
    finally:
        if clip is not None:
            shutil.rmtree(clip.parent, ignore_errors=True)


def open_cameras(site: SiteConfig) -> list[Camera]:
    """Every enabled camera's source, opened; a camera that cannot be opened is named in the error."""
    cameras = []
    for config in site.enabled:
        try:
            cameras.append(Camera(config, open_source(config.source)))
        except SourceError as err:
            raise SourceError(f"camera {config.name}: {err}") from None
    return cameras


def site_outputs(site: SiteConfig | None, metrics: Metrics, states: Callable[[], dict[str, dict]]) -> list:
    """Where the site's events go besides this machine: MQTT, a webhook, or nowhere (the default)."""
    if site is None:
        return []
    outputs: list = []
    if site.mqtt is not None:
        outputs.append(MqttOutput(site.mqtt, site.node, metrics, states, snapshots=site.privacy.snapshots,
                                  blur=site.privacy.blur_faces))
    if site.webhook is not None:
        outputs.append(WebhookOutput(site.webhook, site.node, metrics))
    return outputs


def _run_server(args: argparse.Namespace, sock: socket.socket, pipeline: Any, site: SiteConfig | None,
                cameras: list[Camera]) -> int:
    hosts = allowed_hosts(args.host, args.allowed_host)
    uploads = UploadQueue(args.upload_workers, args.upload_queue)
    history = History(site.history.path, site.history.retention_days) if site is not None else History()
    metrics = Metrics()
    outputs = site_outputs(site, metrics, lambda: {name: w.summary(history) for name, w in app.state.workers.items()})
    app = create_app(pipeline, token=args.token, max_upload=args.max_upload, hosts=hosts, uploads=uploads,
                     cameras=cameras, history=history, privacy=site.privacy if site is not None else None,
                     metrics=metrics, outputs=outputs)

    class Server(uvicorn.Server):
        stop_signal: int | None = None

        def handle_exit(self, sig: int, frame: Any) -> None:
            self.stop_signal = self.stop_signal or sig
            app.state.closing = True  # ends /stream and /events so shutdown does not wait on them
            super().handle_exit(sig, frame)

    if not args.token and not is_loopback(args.host):
        print(f"warning: listening on {args.host} without --token (--insecure): anyone who can reach it can use it",
              file=sys.stderr)
    quiet_accept_floods()
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=3, http=guarded_protocol(),
                            limit_concurrency=connection_limit(raise_descriptor_limit()),
                            timeout_keep_alive=KEEP_ALIVE_SECONDS, h11_max_incomplete_event_size=MAX_HEAD_BYTES)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    what = (f"watching {', '.join(f'{c.config.name} ({public_name(c.source.name)})' for c in cameras)}"
            if cameras else "no stream (uploads only)")
    print(f"serving on http://{shown}:{port}/ ({what}; Ctrl-C to stop)", file=sys.stderr, flush=True)
    server = Server(config)
    if threading.current_thread() is threading.main_thread():  # uvicorn takes SIGINT and SIGTERM; SIGHUP too
        signal.signal(signal.SIGHUP, server.handle_exit)
    server.run(sockets=[sock])  # uvicorn raises SIGINT or SIGTERM again once shut down: Stop, in main
    if server.stop_signal:
        return 128 + server.stop_signal
    return 0 if server.started else 1
