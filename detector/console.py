"""What every command of the detector shares at its edge: the one-line error, exit statuses, quiet native logs.

Every expected failure (a missing file, no camera, an unwritable output, a busy
port) ends with one ``error:`` line on stderr and a non-zero status, never a
traceback; the command line and the service both say it through ``fail``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

EXIT_BAD_INPUT = 2
EXIT_OUTPUT_CLOSED = 128 + 13
"""Standard output's reader went away: the status of a Unix tool ended by SIGPIPE."""
FLOAT_HELP = ("judge faces with the float nets as trained, not their int8 copies "
              "(the same verdicts on every held-out val face, twice the per-face time)")


def fail(message: str) -> int:
    """Say what is wrong in one line and give the status for bad input."""
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def quiet_native_logs() -> None:
    """Leave the user only the project's own lines: OpenCV's and FFmpeg's logs (11 lines for a missing
    camera, one per damaged video packet) and TensorFlow's start-up chatter are off unless set otherwise.
    They must be set before OpenCV is first imported."""
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a mistake is one ``error:`` line and status 2, like every other failure of the
    detector (argparse's own is a usage block and ``prog: error: ...``)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise SystemExit(fail(f"{message} (see {self.prog} --help)"))


def at_least(minimum: int, unit: str = "") -> Callable[[str], int]:
    """An argparse ``type=`` for a whole number no smaller than ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}{unit}, not {value}")
        return value

    parse.__name__ = "number"  # argparse names the type in its message
    return parse


def port_number(text: str) -> int:
    """An argparse ``type=`` for a TCP port (0: any free one)."""
    value = at_least(0)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, not {value}")
    return value
