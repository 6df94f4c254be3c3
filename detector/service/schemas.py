"""The shapes of the service's JSON answers, as pydantic models: ``/docs`` shows them and FastAPI checks
every answer of the ``/api`` routes against them, so the documentation cannot drift from what is sent."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Label = Literal["mask", "incorrect", "no_mask"]
Verdict = Literal["mask", "incorrect", "no_mask", "checking"]


class Error(BaseModel):
    error: str


class FaceOut(BaseModel):
    """One face, as in the command line's ``--json`` records."""

    box: list[float] = Field(description="x1, y1, x2, y2 in the image's pixels")
    label: Label | None
    score: float
    nose_visible: bool
    mouth_visible: bool
    track: int | None
    quality: float | None = Field(description="how well the photo shows the face, 0-1")
    settled: bool = Field(description="the view is clear enough to rest a verdict on")


class DetectOut(BaseModel):
    faces: list[FaceOut]
    width: int
    height: int
    ms: float = Field(description="time to answer, reading and decoding included")


class PeopleCounts(BaseModel):
    mask: int
    incorrect: int
    no_mask: int
    checking: int = Field(description="people never seen clearly enough to judge")


class Judged(BaseModel):
    people: PeopleCounts
    compliance: float | None = Field(description="people in a mask over people judged; null when none were")


class SourceStatus(BaseModel):
    state: str
    attempt: int
    attempts: int
    retry_in_s: float | None
    reconnects: int


class CameraOut(BaseModel):
    name: str
    status: Literal["running", "reconnecting", "stopped"]
    state: str = Field(description="the finer state: starting, running, reconnecting, no frames, stopped")
    source: str = Field(description="the source, with any password in its URL masked")
    fps: float
    frames: int
    in_view: PeopleCounts
    today: Judged
    source_status: SourceStatus


class CamerasOut(BaseModel):
    cameras: list[CameraOut]


class PersonOut(BaseModel):
    camera: str
    track: int
    first_seen: float = Field(description="Unix time")
    last_seen: float
    verdict: Verdict
    score: float
    shares: dict[str, float] = Field(description="share of the person's frames per label")
    frames: int
    best_quality: float


class PeopleOut(BaseModel):
    people: list[PersonOut]
    count: int


class Bucket(Judged):
    bucket: str = Field(description="YYYY-MM-DDTHH:00 (hour) or YYYY-MM-DD (day), local time")


class ComplianceOut(BaseModel):
    bucket: Literal["hour", "day"]
    camera: str | None
    since: float
    buckets: list[Bucket]
