"""``python benchmarks/slow_clients.py``: does ``/health`` answer while half-open connections hold the server?

Starts ``python -m detector serve --demo`` with a small open-file limit (``--descriptors``,
as ``ulimit -n`` would set), opens ``--connections`` connections that each send part of a
request head and then nothing, and reports how long ``/health`` takes to answer meanwhile,
how many of those connections the server has closed after ``--wait`` seconds (a request head
must arrive within 10 s), and the lines the server logged.

    python benchmarks/slow_clients.py                                  # 400 half-open, 256 descriptors
    python benchmarks/slow_clients.py --connections 40 --json out.json
"""

from __future__ import annotations

import argparse
import json
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health_seconds(base: str) -> float | None:
    """Seconds for ``/health`` to answer 200, or None when it did not within 15 s."""
    start = time.monotonic()
    try:
        ok = httpx.get(f"{base}/health", timeout=15).status_code == 200
    except httpx.TransportError:
        ok = False
    return round(time.monotonic() - start, 2) if ok else None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--connections", type=int, default=400)
    p.add_argument("--descriptors", type=int, default=256)
    p.add_argument("--wait", type=float, default=12.0, help="seconds before counting the closed connections")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    port, log = free_port(), Path(tempfile.mkdtemp()) / "serve.log"
    limit = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (args.descriptors, args.descriptors))  # noqa: E731
    with open(log, "wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "detector", "serve", "--demo", "--port", str(port)], cwd=ROOT,
                                  stdout=out, stderr=subprocess.STDOUT, preexec_fn=limit)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while health_seconds(base) is None:
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"the server did not start:\n{log.read_text()}")
        sockets = []
        for _ in range(args.connections):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                sockets.append(s)
            except OSError:
                break
        during = health_seconds(base)
        time.sleep(args.wait)
        closed = 0
        for s in sockets:
            s.settimeout(0.2)
            try:
                closed += s.recv(64) == b""
            except OSError:
                pass
            s.close()
        after = health_seconds(base)
    finally:
        server.terminate()
        server.wait(30)
    lines = log.read_text().splitlines()
    result = {"connections": len(sockets), "descriptors": args.descriptors, "health_s_during": during,
              "closed_after_s": args.wait, "closed": closed, "health_s_after": after,
              "log_lines": len(lines), "tracebacks": sum("Traceback" in line for line in lines)}
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
