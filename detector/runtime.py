"""Where the shipped nets are, and how every ONNX session of the detector is opened.

One place, so the classifier, the visibility models and MTCNN's nets all run with the
settings measured best on a 2-core CPU.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import onnxruntime as ort

MODELS_DIR = Path(str(importlib.resources.files("detector.models")))
"""The shipped nets (the repository's ``models/``, installed as package data by ``pyproject.toml``):
the float nets, as ``training`` exports them (checked against Keras) and installs them."""


def cpu_session_options(threads: int) -> ort.SessionOptions:
    """Options for every ONNX session of the detector (classifier, visibility model, MTCNN's nets).

    No spinning: onnxruntime's idle workers otherwise spin between the many
    small calls of a frame and steal the cores every other stage needs (on 2
    cores, 4 faces: 28.6 FPS with spinning, 65-73 without; benchmarks/README.md).
    No memory arena: PNet sees a new input shape at every pyramid level of every
    photo size, and the arena keeps a buffer for each: one 3000x2000 photo took
    the process from 172 MB to 1.18 GB with it and to 0.50-0.60 GB without, while
    the demo clip ran at the same 56 FPS either way.
    """
    options = ort.SessionOptions()
    options.enable_cpu_mem_arena = False
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def onnx_session(path: Path, threads: int | None = None) -> ort.InferenceSession:
    """A CPU session; a clear error when the model file is missing.

    One intra-op thread by default: a batch of a few 64x64 faces gains nothing
    from two (measured equal), and one never waits on a worker descheduled by
    another process on a shared machine.
    """
    if not Path(path).exists():
        raise FileNotFoundError(f"model not found: {path} (train one with python -m training train)")
    return ort.InferenceSession(str(path), cpu_session_options(threads or 1), providers=["CPUExecutionProvider"])
