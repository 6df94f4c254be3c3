"""The JSON a person's events carry, the same over MQTT and a webhook, so one consumer reads both."""

from __future__ import annotations

import base64

import cv2

from detector.people import Person


def verdict_message(event: dict, node: str, person: Person | None = None, snapshot: bool = False,
                    blur: bool = False) -> dict:
    """A person's verdict settled (``previous`` None) or changed; ``snapshot`` adds their best frame so far."""
    message = {"event": "verdict", "node": node, "camera": event["camera"], "track": event["track"],
               "label": event["new"], "previous": event["old"], "score": event["score"], "time": event["time"]}
    return _with_snapshot(message, person, snapshot, blur)


def person_message(person: Person, node: str, snapshot: bool = False, blur: bool = False) -> dict:
    """A person left view: their whole record; ``snapshot`` adds their best frame."""
    message = {"event": "left", "node": node, "label": person.verdict, "time": round(person.last_seen, 3),
               **person.to_json()}
    return _with_snapshot(message, person, snapshot, blur)


def _with_snapshot(message: dict, person: Person | None, snapshot: bool, blur: bool) -> dict:
    """A base64 JPEG of the person's best-quality face, blurred past recognition where the site asks."""
    if snapshot and person is not None and person.best_crop is not None and person.best_crop.size:
        crop = cv2.GaussianBlur(person.best_crop, (31, 31), 0) if blur else person.best_crop
        ok, jpeg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if ok:
            message["snapshot"] = base64.b64encode(jpeg.tobytes()).decode("ascii")
    return message
