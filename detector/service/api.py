"""``/api``: the cameras, the people they saw, compliance per hour or day, and a CSV export.

Every count here is of people (one record per track, ``detector.people``), not of
face-frames: a person in view for ten seconds is one person. The records come
from the history (``detector.service.history``), so they survive a restart.
"""

from __future__ import annotations

import time
from typing import Literal

from fastapi import FastAPI, Query
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from detector.people import UNSETTLED
from detector.service.history import History, start_of_today
from detector.service.schemas import CamerasOut, ComplianceOut, Error, PeopleOut
from detector.types import LABELS

VERDICTS = (*LABELS, UNSETTLED)
ERRORS: dict[int | str, dict] = {400: {"model": Error, "description": "a bad query"},
                                 404: {"model": Error, "description": "no such camera"}}


def people_routes(app: FastAPI, history: History) -> None:
    def known(camera: str | None) -> str | None:
        if camera is not None and camera not in app.state.workers and not history.counts(camera):
            raise StarletteHTTPException(404, f"no camera named {camera!r} (cameras: {', '.join(app.state.workers)})")
        return camera

    def checked_label(label: str | None) -> str | None:
        if label is not None and label not in VERDICTS:
            raise StarletteHTTPException(400, f"label must be one of {', '.join(VERDICTS)}")
        return label

    @app.get("/api/cameras", response_model=CamerasOut, responses=ERRORS,
             summary="Every camera: status, frame rate, people in view and today per verdict")
    async def cameras() -> dict:
        today = start_of_today()
        return {"cameras": [w.summary(history, today) for w in app.state.workers.values()]}

    @app.get("/api/people", response_model=PeopleOut, responses=ERRORS,
             summary="People who left view, newest first, one record each")
    async def people(camera: str | None = None, since: float | None = Query(None, description="Unix time"),
                     label: str | None = None, limit: int = Query(1000, ge=1, le=100000)) -> dict:
        rows = history.people(known(camera), since, checked_label(label), limit)
        return {"people": rows, "count": len(rows)}

    @app.get("/api/people.csv", responses={200: {"content": {"text/csv": {}}}, **ERRORS},
             summary="The same records as CSV, for a spreadsheet")
    async def people_csv(camera: str | None = None, since: float | None = None) -> Response:
        return Response(history.csv(known(camera), since), media_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="people.csv"'})

    @app.get("/api/compliance", response_model=ComplianceOut, responses=ERRORS,
             summary="People per verdict per hour or day (local time), and the share in a mask")
    async def compliance(camera: str | None = None, bucket: Literal["hour", "day"] = "hour",
                         since: float | None = Query(None, description="Unix time (default: 24 h or 30 days back)")
                         ) -> dict:
        since = since if since is not None else time.time() - (86400 if bucket == "hour" else 30 * 86400)
        return {"bucket": bucket, "camera": known(camera), "since": since,
                "buckets": history.compliance(known(camera), bucket, since)}
