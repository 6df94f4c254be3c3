"""A tiny MJPEG-over-HTTP camera on loopback, for tests of live sources."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np


class MJPEGServer:
    """Serves frames as multipart JPEG at http://127.0.0.1:PORT/cam.mjpg until stopped."""

    def __init__(self, frame: np.ndarray, port: int = 0, fps: float = 25.0) -> None:
        self.jpeg = cv2.imencode(".jpg", frame)[1].tobytes()
        self.fps, self.port = fps, port
        self._stop = threading.Event()
        self._paused = threading.Event()
        self.httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cam.mjpg"

    def start(self) -> MJPEGServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while not server._stop.is_set():
                        if server._paused.is_set():  # a stalled camera: the connection stays, nothing comes
                            time.sleep(0.05)
                            continue
                        head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(server.jpeg)}\r\n\r\n"
                        self.wfile.write(head.encode() + server.jpeg + b"\r\n")
                        time.sleep(1 / server.fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._stop.clear()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def pause(self) -> None:
        """Keep every connection open but send nothing (a camera that stalls)."""
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def stop(self) -> None:
        """Cut the stream: close the listening socket and every open response."""
        self._stop.set()
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
