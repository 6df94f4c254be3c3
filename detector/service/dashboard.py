"""``python -m detector dashboard --mqtt HOST:PORT``: one view of every node and camera on a broker.

A site that outgrows one machine runs several nodes (``serve --config east.toml
--node east``), all publishing to one broker (``detector.service.mqtt``). The
dashboard only subscribes: it learns nodes from their retained status (and their
death from the last will), cameras from their retained state, and serves the
fleet's ``/api/nodes``, ``/api/cameras``, ``/metrics`` and a page. It loads no
model and judges nothing, so it runs anywhere.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter

import uvicorn
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from paho.mqtt import client as mqtt
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from detector.console import fail
from detector.service.security import LOOPBACK_NAMES, SecurityHeaders, page_policy
from detector.types import LABELS

VERDICTS = (*LABELS, "checking")


class Fleet:
    """What the broker told about every node and camera, safe to read from the web threads."""

    def __init__(self, prefix: str = "maskdet") -> None:
        self.prefix = prefix
        self.nodes: dict[str, dict] = {}
        self.cameras: dict[tuple[str, str], dict] = {}
        self.left: Counter = Counter()
        """People who left view since the dashboard started, per (node, camera, verdict)."""
        self.lock = threading.Lock()

    def take(self, topic: str, payload: bytes) -> None:
        """One message; anything that is not a node's (a stranger on the same prefix) is ignored."""
        try:
            self._take(topic.split("/"), payload)
        except (ValueError, AttributeError):
            pass

    def _take(self, parts: list[str], payload: bytes) -> None:
        if len(parts) < 3 or parts[0] != self.prefix:
            return
        with self.lock:
            if len(parts) == 3 and parts[2] == "status":
                self.nodes[parts[1]] = {"node": parts[1], "status": payload.decode(errors="replace"),
                                        "since": round(time.time(), 3)}
            elif len(parts) == 4 and parts[3] == "state":
                self.cameras[(parts[1], parts[2])] = json.loads(payload)
            elif len(parts) == 4 and parts[3] == "person":
                message = json.loads(payload)
                if message.get("event") == "left":
                    self.left[(parts[1], parts[2], message.get("label"))] += 1

    def camera_list(self) -> list[dict]:
        with self.lock:
            nodes = dict(self.nodes)
            cameras = dict(self.cameras)
        out = []
        for (node, name), state in sorted(cameras.items()):
            online = nodes.get(node, {}).get("status") == "online"
            out.append({**state, "node": node, "name": name, "status": state.get("status") if online else "offline"})
        return out

    def totals(self) -> dict:
        """The fleet's people today, summed over its cameras (each node's own history)."""
        people = Counter()
        for camera in self.camera_list():
            people.update(camera.get("today", {}).get("people", {}))
        judged = sum(people[lab] for lab in LABELS)
        return {"people": {lab: people.get(lab, 0) for lab in VERDICTS},
                "compliance": round(people["mask"] / judged, 4) if judged else None}


def fleet_metrics(fleet: Fleet) -> bytes:
    """Prometheus text for the whole fleet, labelled by node and camera (built per scrape from the last states)."""
    registry = CollectorRegistry()
    up = Gauge("maskdet_node_up", "1 while the node says online", ["node"], registry=registry)
    running = Gauge("maskdet_stream_up", "1 while the camera runs", ["node", "camera"], registry=registry)
    fps = Gauge("maskdet_stream_fps", "Frames judged per second", ["node", "camera"], registry=registry)
    today = Gauge("maskdet_people_today", "People today per verdict", ["node", "camera", "label"], registry=registry)
    with fleet.lock:
        nodes = dict(fleet.nodes)
    for node, info in nodes.items():
        up.labels(node=node).set(float(info["status"] == "online"))
    for camera in fleet.camera_list():
        labels = {"node": camera["node"], "camera": camera["name"]}
        running.labels(**labels).set(float(camera["status"] == "running"))
        fps.labels(**labels).set(camera.get("fps", 0.0))
        for label, n in camera.get("today", {}).get("people", {}).items():
            today.labels(**labels, label=label).set(n)
    return generate_latest(registry)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Mask detector fleet</title><link rel="icon" href="data:,">
<style>body{font-family:system-ui,sans-serif;margin:1rem}table{border-collapse:collapse}
td,th{padding:.2rem .6rem;text-align:right}td:first-child,th:first-child{text-align:left}
.offline{color:#c42020}.running{color:#2a8a2a}</style></head>
<body><h1>Mask detector fleet</h1><p id="totals">waiting for the broker…</p>
<table><thead><tr><th>node / camera</th><th>status</th><th>FPS</th><th>mask</th><th>incorrect</th>
<th>no mask</th></tr></thead><tbody id="cameras"></tbody></table>
<script>
"use strict";
async function poll() {
  try {
    const fleet = await (await fetch("/api/cameras", {cache: "no-store"})).json();
    const rows = fleet.cameras.map((c) => {
      const tr = document.createElement("tr"), p = (c.today || {}).people || {};
      for (const v of [`${c.node} / ${c.name}`, c.status, (c.fps || 0).toFixed(1), p.mask, p.incorrect, p.no_mask]) {
        const td = document.createElement("td"); td.textContent = v ?? 0; tr.append(td);
      }
      tr.className = c.status; return tr;
    });
    document.getElementById("cameras").replaceChildren(...rows);
    const t = fleet.totals.people, c = fleet.totals.compliance;
    document.getElementById("totals").textContent = `${fleet.nodes.length} node(s), people today: ` +
      `${t.mask} mask, ${t.incorrect} incorrect, ${t.no_mask} no mask · compliance ` +
      (c === null ? "–" : `${(100 * c).toFixed(1)}%`);
  } catch (err) { document.getElementById("totals").textContent = `unreachable (${err.message})`; }
  setTimeout(poll, 1000);
}
poll();
</script></body></html>
"""


def create_dashboard(fleet: Fleet, hosts: list[str] | None = None) -> FastAPI:
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    app = FastAPI(title="Mask detector fleet", docs_url=None, redoc_url=None)
    app.add_middleware(SecurityHeaders, page_csp=page_policy(PAGE))
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts or list(LOOPBACK_NAMES))

    @app.get("/", response_class=HTMLResponse)
    async def home() -> HTMLResponse:
        return HTMLResponse(PAGE, headers={"Cache-Control": "no-store"})

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/api/nodes")
    async def nodes() -> dict:
        with fleet.lock:
            return {"nodes": sorted(fleet.nodes.values(), key=lambda n: n["node"])}

    @app.get("/api/cameras")
    async def cameras() -> dict:
        with fleet.lock:
            nodes = sorted(fleet.nodes.values(), key=lambda n: n["node"])
        return {"cameras": fleet.camera_list(), "nodes": nodes, "totals": fleet.totals()}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(fleet_metrics(fleet), media_type=CONTENT_TYPE_LATEST)

    return app


def dashboard(args: argparse.Namespace) -> int:
    """The ``dashboard`` subcommand (its options: ``detector.service.options``)."""
    fleet = Fleet(args.topic_prefix)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_connect = lambda c, u, f, r, props: c.subscribe(f"{args.topic_prefix}/#", qos=1)
    client.on_message = lambda c, u, message: fleet.take(message.topic, message.payload)
    client.reconnect_delay_set(1, 30)
    try:
        client.connect(*args.mqtt)
    except OSError as err:
        return fail(f"cannot reach the MQTT broker at {args.mqtt[0]}:{args.mqtt[1]}: {err.strerror or err}")
    client.loop_start()
    print(f"dashboard on http://{args.host}:{args.port}/ (broker {args.mqtt[0]}:{args.mqtt[1]}; Ctrl-C to stop)",
          file=sys.stderr, flush=True)
    try:
        uvicorn.run(create_dashboard(fleet), host=args.host, port=args.port, log_level="warning")
    finally:
        client.loop_stop()
        client.disconnect()
    return 0
