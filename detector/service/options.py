"""The ``serve`` and ``dashboard`` subcommands' options, apart from the code they start.

``python -m detector`` builds one parser with these as subcommands; keeping them
here, with no web framework imported, keeps ``--help`` and a mistyped option
instant.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from detector.console import FLOAT_HELP, at_least, port_number

DEFAULT_MAX_UPLOAD = 10 * 1024 * 1024


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", help="stream this: webcam index, video file, image, folder or stream URL (default: none)")
    p.add_argument("--demo", action="store_true", help="stream the embedded demo clip")
    p.add_argument("--config", type=Path, metavar="SITE.toml",
                   help="the site's cameras, history, MQTT and privacy settings (detector/service/config.py)")
    p.add_argument("--node", help="this machine's name in MQTT topics (default: the config's node, else the host name)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=port_number, default=8000, help="port (default: 8000; 0 picks a free one)")
    p.add_argument("--token", help="require 'Authorization: Bearer TOKEN' (or ?token=) on every route but /health")
    p.add_argument("--insecure", action="store_true", help="allow a --host other than this machine without --token")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="also answer requests for this host name (a DNS name or a proxy in front); repeatable")
    p.add_argument("--max-upload", type=at_least(1, " byte"), default=DEFAULT_MAX_UPLOAD, metavar="BYTES",
                   help=f"largest image POST /detect accepts (default: {DEFAULT_MAX_UPLOAD} = 10 MiB)")
    p.add_argument("--upload-workers", type=at_least(1), default=1, metavar="N",
                   help="uploads judged at once, beside the stream (default: 1)")
    p.add_argument("--upload-queue", type=at_least(0), default=8, metavar="N",
                   help="uploads held waiting; more are answered 503 with Retry-After (default: 8)")
    p.add_argument("--float", action="store_true", help=FLOAT_HELP)


def broker_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``HOST``, port 1883)."""
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "1883")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, not {text!r}")
    return host, int(port)


def add_dashboard_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mqtt", type=broker_address, required=True, metavar="HOST:PORT", help="the broker the nodes use")
    p.add_argument("--topic-prefix", default="maskdet", help="the nodes' topic_prefix (default: maskdet)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default: this machine only)")
    p.add_argument("--port", type=port_number, default=8000, help="port (default: 8000)")
