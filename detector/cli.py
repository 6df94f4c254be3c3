"""``python -m detector``: the command line.

Every expected failure (a missing file, no camera, an unwritable output)
ends with one line on stderr and exit status 2, never a traceback
(``detector.console``). ``python -m detector serve`` and ``python -m detector
dashboard`` hand over to the service's own commands (``detector.service.server``,
``detector.service.dashboard``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from detector.console import EXIT_OUTPUT_CLOSED, FLOAT_HELP, OneLineParser, at_least, fail, quiet_native_logs

if TYPE_CHECKING:  # the real import is deferred: --help and argument errors must stay instant
    from detector.pipeline import PipelineConfig
    from detector.run import Summary
    from detector.sources import Source

def build_parser() -> argparse.ArgumentParser:
    """The one parser of ``python -m detector``: the analysis by default, ``serve`` and ``dashboard`` as subcommands."""
    from detector.service.options import add_dashboard_arguments, add_serve_arguments

    p = OneLineParser(
        prog="python -m detector",
        description="Tell for every face whether a mask is worn correctly, incorrectly or not at all.",
        epilog="Serve over HTTP instead: python -m detector serve --help; watch many nodes on one MQTT broker: "
               "python -m detector dashboard --help",
    )
    p.add_argument("--source", default="0", help="webcam index, video file, image, folder of images or stream URL (default: 0)")
    p.add_argument("--demo", action="store_true", help="run on the embedded demo clip (no camera or data needed)")
    p.add_argument("--output", help="write the annotated result here: a video (.mp4, .avi, ...), an image "
                   "(.jpg, .png, ...) for one photo, or a folder (an annotated image per photo or frame)")
    p.add_argument("--json", help="write one JSON line per frame here ('-' for standard output)")
    p.add_argument("--no-window", action="store_true", help="do not open a window")
    p.add_argument("--finder", choices=("onnx", "reference"), default="onnx", help="face finder backend (default: onnx)")
    p.add_argument("--min-face", type=at_least(12, " pixels"), help="smallest face side to look for, in pixels "
                   "(default: 40 on video and cameras, 20 on photos)")
    p.add_argument("--detect-every", type=at_least(1), help="on video, full face detection every K frames, "
                   "ONet following the faces in between (default: 3)")
    p.add_argument("--search-side", type=at_least(64, " pixels"), help="search for faces on a copy at most this "
                   "many pixels on its longest side; landmarks and crops still use every pixel (default: 1920: 4K is halved)")
    p.add_argument("--confirm-frames", type=at_least(1), help="on video, show a face once it was seen in N frames, "
                   "so a one-frame false face never shows (default: 2; 1 shows every face at once)")
    p.add_argument("--float", action="store_true", help=FLOAT_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    commands = p.add_subparsers(dest="command", metavar="{serve,dashboard}")
    add_serve_arguments(commands.add_parser("serve", help="serve the detector over HTTP: a page, an API, cameras",
                                            description="Serve the face-mask detector over HTTP."))
    add_dashboard_arguments(commands.add_parser("dashboard", help="one view of every node on an MQTT broker",
                                                description="One view of every node and camera on an MQTT broker."))
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    quiet_native_logs()
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, or a mistake said in one line
        return int(done.code or 0)
    if args.command == "serve":
        from detector.service.server import serve

        return serve(args)
    if args.command == "dashboard":
        from detector.service.dashboard import dashboard

        return dashboard(args)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    from detector.run import Stop, raise_stop, signals_handled

    try:  # a stop signal while the models load ends the run at once, with the signal's status
        with signals_handled(raise_stop):
            return _run(args)
    except Stop as stop:
        return stop.status


def pipeline_config(args: argparse.Namespace, video: bool = True) -> PipelineConfig:
    """The PipelineConfig these arguments ask for (``benchmarks/fps.py`` measures exactly this)."""
    from detector.pipeline import PipelineConfig, float_nets

    nets = {"finder": args.finder, **(float_nets() if args.float else {})}
    config = (PipelineConfig.video if video else PipelineConfig.photos)(args.min_face, **nets)
    if args.detect_every is not None:
        config.detect_every = args.detect_every
    if args.search_side is not None:
        config.search_side = args.search_side
    if args.confirm_frames is not None:
        config.confirm_frames = args.confirm_frames
    return config


def _run(args: argparse.Namespace) -> int:
    """Analyse the source; ``--demo`` builds its clip in a temp folder that goes at the end, as ``serve``'s does,
    so repeated demo runs leave nothing behind."""
    if not args.demo:
        return _analyse(args)
    with tempfile.TemporaryDirectory(prefix="mask-demo-") as folder:
        return _analyse(args, demo_folder=Path(folder))


def _analyse(args: argparse.Namespace, demo_folder: Path | None = None) -> int:
    from detector.pipeline import Pipeline
    from detector.run import run
    from detector.sinks import JsonSink, SinkError, check_outputs, output_sink
    from detector.sources import SourceError, open_source
    from detector.window import WindowSink, display_available

    def load(video: bool) -> Pipeline:
        return Pipeline(pipeline_config(args, video))

    try:  # check the input and outputs before the slow model load, so mistakes show at once
        pipeline = None
        if demo_folder is not None:
            from detector.synth.demo import make_demo_clip

            pipeline = load(video=True)
            args.source = str(make_demo_clip(pipeline, demo_folder))
        source = open_source(args.source)
        sinks = []
        if args.output:
            sinks.append(output_sink(args.output, source))
        if args.json:
            sinks.append(JsonSink(args.json))
        check_outputs(source, sinks)
        pipeline = pipeline or load(video=not source.stills)
    except (SourceError, SinkError, FileNotFoundError, ValueError, ImportError) as err:
        return fail(str(err))
    if not args.no_window:
        if display_available():
            sinks.append(WindowSink(fps=None if source.live else source.fps))
        else:
            print("no display found: running headless (no window); use --output or --json to keep results", file=sys.stderr)
    try:
        summary = run(source, pipeline, sinks, progress=not args.quiet)
    except SinkError as err:
        return fail(str(err))
    return finish(summary, source, args.quiet)


def finish(summary: Summary, source: Source, quiet: bool) -> int:
    """The summary lines and the exit status: a stop signal's, a closed output's, or 2 where input was lost."""
    if summary.output_closed:  # `... --json - | head -1`: stop quietly, as other Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit either
        return summary.status or EXIT_OUTPUT_CLOSED
    if not quiet:
        for line in summary.lines():
            print(line, file=sys.stderr)
    if summary.status:
        return summary.status
    if summary.unreadable and not summary.frames:
        return fail(f"none of the {summary.unreadable} {summary.unit} of {source.name} could be read")
    if summary.unreadable:
        total = summary.frames + summary.unreadable
        return fail(f"{summary.unreadable} of {total} {summary.unit} of {source.name} could not be read; "
                    "the rest were judged and written")
    return 0
