"""A site in one file: its cameras, where history goes, what leaves the machine.

``python -m detector serve --config site.toml`` reads this (TOML, with the
standard library's ``tomllib``)::

    node = "east"                  # optional: this machine's name on MQTT (default: the host name)

    [[camera]]
    name = "front-door"            # letters, digits, - and _: it is a URL path and an MQTT topic level
    source = "rtsp://user:pass@10.0.0.5/stream1"   # or a webcam index (0), a file, a folder
    fps = 10                       # optional cap on frames judged per second
    min_face = 40                  # optional, pixels (default 40, as on the command line)
    enabled = true                 # optional

    [history]
    path = "maskdet.db"            # SQLite, relative to this file; absent: kept in memory only
    retention_days = 30

    [mqtt]
    host = "127.0.0.1"
    port = 1883
    topic_prefix = "maskdet"
    snapshot = false               # a JPEG of each person's best frame in their message
    home_assistant = false         # announce a sensor per camera and label to Home Assistant

    [webhook]
    url = "https://example.com/hook"
    labels = ["incorrect", "no_mask"]

    [privacy]
    blur_faces = false             # blur every face in the MJPEG stream and in snapshots
    snapshots = true               # false: keep no face picture anywhere

Nothing leaves the machine unless ``[mqtt]`` or ``[webhook]`` says so. Every
mistake (an unknown key, a duplicate camera, a source of the wrong type) is a
``ConfigError`` naming the file, the line and the key, so a site's operator
finds it without reading code.
"""

from __future__ import annotations

import re
import socket
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from detector.types import LABELS

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""A camera's or node's name: safe in a URL path, a file name and an MQTT topic level."""


class ConfigError(ValueError):
    """A mistake in a site file, said as ``FILE:LINE: what``."""


@dataclass
class CameraConfig:
    name: str
    source: str
    """A webcam index, a video file, an image, a folder or a stream URL, as ``--source`` takes."""
    fps: float | None = None
    """At most this many frames judged per second (a camera giving more has frames skipped)."""
    min_face: int | None = None
    """Smallest face sought, in pixels (default: the command line's video default)."""
    enabled: bool = True


@dataclass
class HistoryConfig:
    path: str | None = None
    """SQLite file; None keeps people in memory only (gone at restart)."""
    retention_days: int = 30


@dataclass
class MqttConfig:
    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = None
    topic_prefix: str = "maskdet"
    snapshot: bool = False
    """Put a base64 JPEG of the person's best frame in their message."""
    queue: int = 1000
    """Messages kept while the broker is away; the oldest are dropped (and counted) beyond this."""
    home_assistant: bool = False
    """Announce one sensor per camera and label (people today) by Home Assistant's MQTT discovery."""


@dataclass
class WebhookConfig:
    url: str
    labels: list[str] = field(default_factory=lambda: list(LABELS))
    """Post people with these verdicts only."""
    timeout: float = 5.0
    retries: int = 3


@dataclass
class PrivacyConfig:
    blur_faces: bool = False
    snapshots: bool = True


@dataclass
class SiteConfig:
    cameras: list[CameraConfig]
    node: str = field(default_factory=lambda: safe_name(socket.gethostname()))
    history: HistoryConfig = field(default_factory=HistoryConfig)
    mqtt: MqttConfig | None = None
    webhook: WebhookConfig | None = None
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)

    @property
    def enabled(self) -> list[CameraConfig]:
        return [c for c in self.cameras if c.enabled]


def safe_name(text: str) -> str:
    """``text`` with every character a topic or URL would choke on replaced by ``-``."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)[:64] or "node"


def one_camera(source: str, name: str = "main") -> SiteConfig:
    """The site ``serve --source`` means: one camera."""
    return SiteConfig(cameras=[CameraConfig(name=name, source=source)])


def load_site(path: Path) -> SiteConfig:
    """The site described in ``path``; ``ConfigError`` (file, line, key) for anything wrong in it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    return _Reader(path, text).site(raw)


class _Reader:
    """Turns the parsed TOML into dataclasses, finding the line of each key it complains about."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.lines = path, text.splitlines()

    def fail(self, table: str, key: str, message: str, index: int = 0) -> ConfigError:
        return ConfigError(f"{self.path}:{self.line_of(table, key, index)}: {message}")

    def line_of(self, table: str, key: str, index: int = 0) -> int:
        """The line of ``key`` in the ``index``-th ``[table]`` (``[[table]]``), or of the table's header."""
        current, seen, header_line = "", -1, 1
        for number, line in enumerate(self.lines, 1):
            stripped = line.strip()
            header = re.match(r"^\[\[?\s*([A-Za-z0-9_.-]+)\s*\]\]?", stripped)
            if header:
                current = header.group(1)
                if table == "" and current == key:  # a whole table the site does not know
                    return number
                if current == table:
                    seen += 1
                    header_line = number if seen == index else header_line
                continue
            if current == table and seen == index and re.match(rf"^{re.escape(key)}\s*=", stripped):
                return number
            if table == "" and current == "" and re.match(rf"^{re.escape(key)}\s*=", stripped):
                return number
        return header_line

    def site(self, raw: dict) -> SiteConfig:
        known = {"node", "camera", "history", "mqtt", "webhook", "privacy"}
        for key in raw:
            if key not in known:
                raise self.fail("", key, f"unknown key '{key}' (known: {', '.join(sorted(known))})")
        cameras = raw.get("camera")
        if not isinstance(cameras, list) or not cameras:
            raise ConfigError(f"{self.path}: no [[camera]]: a site needs at least one camera")
        site = SiteConfig(cameras=[self.camera(c, i) for i, c in enumerate(cameras)])
        names = [c.name for c in site.cameras]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise self.fail("camera", "name", f"camera name '{name}' is used twice", i)
        if "node" in raw:
            site.node = self.name("", "node", raw["node"])
        site.history = self.table("history", raw, HistoryConfig) or site.history
        site.mqtt = self.table("mqtt", raw, MqttConfig)
        site.webhook = self.table("webhook", raw, WebhookConfig)
        site.privacy = self.table("privacy", raw, PrivacyConfig) or site.privacy
        self.check(site)
        return site

    def name(self, table: str, key: str, value: Any, index: int = 0) -> str:
        if not isinstance(value, str) or not NAME.match(value):
            raise self.fail(table, key, f"{key} must be 1-64 letters, digits, '-' or '_', not {value!r}", index)
        return value

    def camera(self, raw: Any, index: int) -> CameraConfig:
        if not isinstance(raw, dict):
            raise self.fail("camera", "", "each [[camera]] must be a table", index)
        camera = self.fill("camera", raw, CameraConfig, index)
        camera.name = self.name("camera", "name", camera.name, index)
        if isinstance(raw["source"], int) and not isinstance(raw["source"], bool):
            camera.source = str(raw["source"])  # a webcam index
        elif not isinstance(raw["source"], str) or not raw["source"].strip():
            raise self.fail("camera", "source", "source must be a path, a URL or a webcam index "
                            f"(a string or a whole number), not {raw['source']!r}", index)
        if camera.fps is not None and camera.fps <= 0:
            raise self.fail("camera", "fps", "fps must be above 0", index)
        if camera.min_face is not None and camera.min_face < 12:
            raise self.fail("camera", "min_face", "min_face must be at least 12 pixels", index)
        return camera

    def table(self, name: str, raw: dict, kind: type) -> Any:
        if name not in raw:
            return None
        if not isinstance(raw[name], dict):
            raise self.fail("", name, f"[{name}] must be a table")
        return self.fill(name, raw[name], kind)

    def fill(self, table: str, raw: dict, kind: type, index: int = 0) -> Any:
        """``kind`` from ``raw``: every key known, every required one there, every value of its type."""
        spec = {f.name: f for f in fields(kind)}
        for key in raw:
            if key not in spec:
                raise self.fail(table, key, f"unknown key '{key}' in [{table}] (known: {', '.join(spec)})", index)
        missing = [f.name for f in spec.values() if f.name not in raw and _required(f)]
        if missing:
            raise self.fail(table, "", f"[{table}] needs {', '.join(missing)}", index)
        for key, value in raw.items():
            if key != "source" and not _fits(spec[key].type, value):
                raise self.fail(table, key, f"{key} must be {spec[key].type.replace(' | None', '')}, not {value!r}",
                                index)
        return kind(**raw)

    def check(self, site: SiteConfig) -> None:
        if site.history.retention_days < 1:
            raise self.fail("history", "retention_days", "retention_days must be at least 1")
        if site.history.path is not None:  # relative to the site file, as an operator reads it
            site.history.path = str((self.path.parent / site.history.path).resolve())
        if site.mqtt is not None:
            if not 0 < site.mqtt.port < 65536:
                raise self.fail("mqtt", "port", f"port must be between 1 and 65535, not {site.mqtt.port}")
            if site.mqtt.queue < 1:
                raise self.fail("mqtt", "queue", "queue must be at least 1")
            if not site.mqtt.topic_prefix or any(c in site.mqtt.topic_prefix for c in "#+"):
                raise self.fail("mqtt", "topic_prefix", "topic_prefix must be a topic without '#' or '+'")
        if site.webhook is not None:
            if not site.webhook.url.startswith(("http://", "https://")):
                raise self.fail("webhook", "url", "url must start with http:// or https://")
            unknown = set(site.webhook.labels) - set(LABELS)
            if unknown:
                raise self.fail("webhook", "labels", f"labels must be among {', '.join(LABELS)}, not {sorted(unknown)}")


def _required(f: Any) -> bool:
    return f.default is MISSING and f.default_factory is MISSING


_TYPES = {"str": str, "int": int, "float": (int, float), "bool": bool, "list[str]": list}


def _fits(annotation: str, value: Any) -> bool:
    """Whether a TOML value fits a field's annotation (``from __future__ import annotations`` keeps them text)."""
    kinds = [part.strip() for part in annotation.split("|") if part.strip() != "None"]
    for kind in kinds:
        wanted = _TYPES[kind]
        if isinstance(value, bool) and kind != "bool":
            continue
        if isinstance(value, wanted):
            return kind != "list[str]" or all(isinstance(v, str) for v in value)
    return False
