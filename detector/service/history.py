"""People's records in SQLite, so the day's counts and the last weeks survive a restart.

One row per person (``detector.people.Person``), written when they leave view;
every count the service shows (today per camera, compliance per hour or day)
is a query over those rows, so there is no second tally to drift from them.
The file is in WAL mode (readers never wait on the writer) and rows older than
the retention are dropped once an hour. Without a path the same store lives in
memory: counts then start over at each restart.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

from detector.people import UNSETTLED, Person
from detector.types import LABELS

SCHEMA = """
CREATE TABLE IF NOT EXISTS people (
    id INTEGER PRIMARY KEY,
    camera TEXT NOT NULL,
    track INTEGER NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    verdict TEXT NOT NULL,
    score REAL NOT NULL,
    shares TEXT NOT NULL,
    frames INTEGER NOT NULL,
    best_quality REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS people_time ON people (last_seen);
CREATE INDEX IF NOT EXISTS people_camera ON people (camera, last_seen);
"""
BUCKETS = {"hour": "%Y-%m-%dT%H:00", "day": "%Y-%m-%d"}
"""Compliance buckets, in the machine's local time: a site's 'today' is its own."""
COLUMNS = ("camera", "track", "first_seen", "last_seen", "verdict", "score", "shares", "frames", "best_quality")


class History:
    """The person records of one service; safe to use from the camera threads and the event loop."""

    def __init__(self, path: str | None = None, retention_days: int = 30) -> None:
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path, self.retention = path, retention_days * 86400.0
        self._db = sqlite3.connect(path or ":memory:", check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            if path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
        self._pruned = 0.0
        self.prune()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, people: list[Person]) -> None:
        rows = [(p.camera, p.track, round(p.first_seen, 3), round(p.last_seen, 3), p.verdict, round(p.score, 4),
                 json.dumps(p.shares), sum(p.frames.values()), round(p.best_quality, 3)) for p in people]
        with self._lock:
            self._db.executemany(f"INSERT INTO people ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                                 rows)
        if time.time() - self._pruned > 3600:
            self.prune()

    def prune(self, now: float | None = None) -> int:
        """Drop records older than the retention; the number dropped."""
        now = time.time() if now is None else now
        with self._lock:
            gone = self._db.execute("DELETE FROM people WHERE last_seen < ?", (now - self.retention,)).rowcount
        self._pruned = now
        return gone

    def people(self, camera: str | None = None, since: float | None = None, label: str | None = None,
               limit: int = 1000) -> list[dict]:
        """Records, newest first."""
        where, args = _filters(camera, since, label)
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(COLUMNS)} FROM people{where} ORDER BY last_seen DESC LIMIT ?",
                                    (*args, limit)).fetchall()
        return [_record(row) for row in rows]

    def counts(self, camera: str | None = None, since: float | None = None) -> Counter:
        """People per verdict (``checking`` too)."""
        where, args = _filters(camera, since, None)
        with self._lock:
            rows = self._db.execute(f"SELECT verdict, COUNT(*) FROM people{where} GROUP BY verdict", args).fetchall()
        return Counter(dict(rows))

    def compliance(self, camera: str | None = None, bucket: str = "hour", since: float | None = None) -> list[dict]:
        """People per verdict per bucket (``hour`` or ``day``, local time), oldest first, with the share in a mask."""
        where, args = _filters(camera, since, None)
        with self._lock:
            rows = self._db.execute(
                f"SELECT strftime('{BUCKETS[bucket]}', last_seen, 'unixepoch', 'localtime') AS b, verdict, COUNT(*) "
                f"FROM people{where} GROUP BY b, verdict ORDER BY b", args).fetchall()
        buckets: dict[str, Counter] = {}
        for name, verdict, n in rows:
            buckets.setdefault(name, Counter())[verdict] = n
        return [{"bucket": name, **people_counts(counts)} for name, counts in buckets.items()]

    def csv(self, camera: str | None = None, since: float | None = None) -> str:
        rows = self.people(camera, since, limit=10**9)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=[*COLUMNS[:-3], *(f"share_{lab}" for lab in LABELS), "frames",
                                                 "best_quality"], extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, **{f"share_{lab}": row["shares"][lab] for lab in LABELS}})
        return out.getvalue()


def people_counts(counts: Counter) -> dict:
    """People per label, the unclear ones, and compliance: people in a mask over people judged."""
    judged = sum(counts.get(lab, 0) for lab in LABELS)
    return {"people": {lab: counts.get(lab, 0) for lab in (*LABELS, UNSETTLED)},
            "compliance": round(counts.get("mask", 0) / judged, 4) if judged else None}


def start_of_today(now: float | None = None) -> float:
    """Unix time of the last local midnight."""
    t = time.localtime(time.time() if now is None else now)
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0, 0, 0, -1))


def _filters(camera: str | None, since: float | None, label: str | None) -> tuple[str, tuple]:
    parts, args = [], []
    for clause, value in (("camera = ?", camera), ("last_seen >= ?", since), ("verdict = ?", label)):
        if value is not None:
            parts.append(clause)
            args.append(value)
    return (" WHERE " + " AND ".join(parts) if parts else ""), tuple(args)


def _record(row: tuple) -> dict:
    record = dict(zip(COLUMNS, row))
    record["shares"] = json.loads(record["shares"])
    return record
