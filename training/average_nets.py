"""Average several refits of one MTCNN net into a single ONNX file.

Why: each refit of the face finder (``training.finetune_mtcnn``) boxes a few
non-faces of its own (a badge emblem, a galaxy, a spoon's reflection), and two
runs of the same command share few of them, while both keep the real faces.
Averaging their outputs keeps what they agree on. The members run inside one
graph on one shared input, so the detector loads one file per net as before.

Usage: ``python -m training.average_nets OUT.onnx MEMBER.onnx MEMBER.onnx [...]``
(every member has the same input and the same outputs: refits of one net).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import compose, helper

TOLERANCE = 1e-5
"""Largest |averaged file - mean of the members| accepted on random inputs."""


def load_member(path: Path) -> onnx.ModelProto:
    """One member file; ValueError naming it when it is missing or not an ONNX model."""
    try:
        return onnx.load(str(path))
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None
    except Exception as error:  # protobuf's DecodeError and kin: not an ONNX file
        raise ValueError(f"not an ONNX model: {path} ({error.__class__.__name__})") from None


def average_models(members: list[onnx.ModelProto]) -> onnx.ModelProto:
    """One model whose every output is the mean of that output over ``members``."""
    first = members[0]
    inputs = [i.name for i in first.graph.input]
    outputs = [o.name for o in first.graph.output]
    for m in members[1:]:
        if [i.name for i in m.graph.input] != inputs or [o.name for o in m.graph.output] != outputs:
            raise ValueError("members differ in their inputs or outputs: average refits of one net only")
    prefixed = [compose.add_prefix(m, f"m{k}_") for k, m in enumerate(members)]
    nodes, initializers = [], []
    for k, m in enumerate(prefixed):  # the members read the shared input under its own name
        nodes += [helper.make_node("Identity", [name], [f"m{k}_{name}"]) for name in inputs]
        nodes += list(m.graph.node)
        initializers += list(m.graph.initializer)
    weight = helper.make_tensor("average_weight", onnx.TensorProto.FLOAT, [], [1.0 / len(members)])
    for name in outputs:
        nodes.append(helper.make_node("Sum", [f"m{k}_{name}" for k in range(len(members))], [f"sum_{name}"]))
        nodes.append(helper.make_node("Mul", [f"sum_{name}", "average_weight"], [name]))
    graph = helper.make_graph(nodes, f"average_of_{len(members)}", list(first.graph.input),
                              list(first.graph.output), initializers + [weight])
    model = helper.make_model(graph, opset_imports=list(first.opset_import), ir_version=first.ir_version)
    onnx.checker.check_model(model)
    return model


def max_difference(averaged: Path, members: list[Path], shape: tuple[int, ...], seed: int = 0) -> float:
    """Largest |averaged - mean of members| over the outputs, on a random batch of ``shape``."""
    x = np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)
    def run(path: Path) -> list[np.ndarray]:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: x})

    got = run(averaged)
    want = [np.mean(arrays, axis=0) for arrays in zip(*(run(p) for p in members))]
    return max(float(np.abs(g - w).max()) for g, w in zip(got, want))


def net_shape(model: onnx.ModelProto, batch: int = 8) -> tuple[int, ...]:
    """A batch shape for the model's input (its symbolic batch and size dimensions filled in)."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return tuple(d.dim_value if d.dim_value else (batch if i == 0 else 24) for i, d in enumerate(dims))


def main(argv: list[str] | None = None) -> int:
    """Average, write, and check the file against the members."""
    parser = argparse.ArgumentParser(prog="python -m training.average_nets", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the averaged .onnx file to write")
    parser.add_argument("members", type=Path, nargs="+", help="two or more refits of one net (.onnx)")
    args = parser.parse_args(argv)
    if len(args.members) < 2:
        print("error: give at least two members to average", file=sys.stderr)
        return 2
    try:
        members = [load_member(p) for p in args.members]
        model = average_models(members)
    except (ValueError, onnx.checker.ValidationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(args.out))
    diff = max_difference(args.out, args.members, net_shape(members[0]))
    print(f"{args.out}: mean of {len(members)} members; max |difference| {diff:.1e}")
    return 0 if diff <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
