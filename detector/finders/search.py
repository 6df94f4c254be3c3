"""On video, when and how to look for new faces: one search spread over the frames of a cycle.

A whole search of a 720p frame costs more than a frame's time at 30 FPS: MTCNN
at the video's 40 px floor takes ~60 ms, most of it in the pyramid's finest
level. Known faces need no search, ONet follows them on every frame for ~1 ms
each; only new faces do. So a cycle of ``every`` frames runs one part of the
search per frame, and the frames left over only follow:

    MTCNN's pyramid, in two parts on a large frame (the coarse levels first, the
        finest, which alone costs about half, next) or whole on a small one
    YuNet on a half-size copy (``detector.finders.yunet``), which also finds faces under
        the 40 px floor, each box re-scored and re-located by ONet

Every face is searched for once a cycle, as before, and no frame pays for the
whole search. The search is for new faces: PNet's proposals on a face already
followed stop there, before RNet and ONet. A scene that does not move (an empty
corridor, people standing still and followed) skips the searches, except for
one whole cycle every ``refresh_seconds``: a small grey copy of each frame
against the previous one tells motion from sensor noise. A face lost by its
follower (turned away, hidden a moment) puts the search back on every cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from detector.finders.still import apart
from detector.types import Detection

SPLIT_PIXELS = 800 * 600
"""A search copy larger than this has MTCNN's pyramid split over two frames (720p: 0.92 million pixels)."""
THUMB = (64, 36)
"""Size of the grey copy motion is judged on: a person entering changes many of its pixels, noise few."""


@dataclass
class SearchPlan:
    """How a video looks for new faces; ``PipelineConfig.search`` holds the one in use."""

    every: int = 3
    """Frames in a cycle: each face is searched for once a cycle; frames left after the phases only follow."""
    bands: int | None = None
    """Parts MTCNN's pyramid is split into, one per frame; None: 2 for frames over ``SPLIT_PIXELS``, else 1
    (a small frame's whole pyramid is cheap, and splitting it only repeats RNet and ONet)."""
    yunet: bool = True
    """Also look with YuNet on a 640 px copy, once a cycle."""
    yunet_onet: float = 0.5
    """ONet score a YuNet box needs to count as a face."""
    skip_known: bool = True
    """MTCNN's search passes PNet's proposals on followed faces no further (``OnnxMTCNN.detect``'s ``known``)."""
    fast_pyramid: bool = True
    """MTCNN's pyramid levels resized from its finest level, not each from the frame (``OnnxMTCNN._pyramid``)."""
    motion: float | None = 2.0
    """Mean change of the grey copy (0-255) under which a frame counts as still; None searches every cycle."""
    refresh_seconds: float = 1.0
    """A still scene is searched in full at least this often."""

    def parts(self, rgb: np.ndarray) -> int:
        """MTCNN's parts for a search copy of this size."""
        if self.bands is not None:
            return self.bands
        return 2 if rgb.shape[0] * rgb.shape[1] > SPLIT_PIXELS else 1


class Searcher:
    """Runs one phase of the plan per frame on the search copy (RGB), or none when the scene is still."""

    def __init__(self, finder, plan: SearchPlan, fps: float) -> None:
        self.finder, self.plan = finder, plan
        self.yunet = None
        if plan.yunet:
            from detector.finders.yunet import YuNet

            self.yunet = YuNet()
        self.refresh_frames = max(plan.every, round(plan.refresh_seconds * fps))
        self._phase = 0
        self._still_for = 0
        self._last_thumb: np.ndarray | None = None

    def still(self, rgb: np.ndarray) -> bool:
        """Whether this frame barely differs from the last one (the thumbnail's mean absolute change)."""
        thumb = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), THUMB, interpolation=cv2.INTER_AREA).astype(np.int16)
        last, self._last_thumb = self._last_thumb, thumb
        return last is not None and float(np.abs(thumb - last).mean()) < self.plan.motion

    def __call__(self, rgb: np.ndarray, known: list[Detection], lost: bool = False) -> list[Detection]:
        """New faces this frame's phase finds, apart from the ``known`` ones (followed faces). ``lost``: a face
        followed until lately no longer is (turned away, hidden), so the scene is searched as if it moved: a
        still person whose track dropped is found again within a cycle, not at the next refresh."""
        bands = self.plan.parts(rgb)
        cycle = max(self.plan.every, bands + int(self.yunet is not None))
        if self.plan.motion is not None and not lost and self.still(rgb):
            self._still_for += 1
            if self._still_for % self.refresh_frames >= cycle:  # a still scene: a full cycle now and then
                return []
        else:
            self._still_for = 0
        phase, self._phase = self._phase % cycle, (self._phase + 1) % cycle
        if phase < bands:
            found = self._band(rgb, phase, bands, [d.box for d in known] if self.plan.skip_known else None)
        elif phase == bands and self.yunet is not None:
            found = self._yunet(rgb)
        else:
            return []
        return apart(found, known)

    def _band(self, rgb: np.ndarray, band: int, bands: int, known: list | None) -> list[Detection]:
        """One part of MTCNN's pyramid: first the coarse levels together (large, near faces, found on a
        stream's first frame), then the finer levels one by one, the finest (the costliest) last."""
        if bands == 1:
            levels = None
        else:
            fine = bands - 1  # levels 0 .. fine-1 are searched alone, finest last
            levels = slice(fine, None) if band == 0 else slice(fine - band, fine - band + 1)
        return self.finder.detect(rgb, levels=levels, known=known, fast_pyramid=self.plan.fast_pyramid)

    def _yunet(self, rgb: np.ndarray) -> list[Detection]:
        proposals = self.yunet.detect(rgb)
        if not proposals:
            return []
        refined = self.finder.refine(rgb, [d.box for d in proposals], self.plan.yunet_onet)
        return [d for d in refined if d is not None]
