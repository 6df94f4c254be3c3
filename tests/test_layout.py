"""The layout shows the architecture, and the imports keep to it: no module imports one above it.

Read from the source (every ``import``, at the top of a file or inside a function), not by importing,
so the check costs nothing and sees the deferred imports too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("detector", "training")

BELOW_THE_PIPELINE = ("detector.finders", "detector.synth")
"""Face finders and the mask painter: the pipeline is built from them, so they know nothing of it."""
THE_PIPELINE_AND_ABOVE = ("detector.pipeline", "detector.video", "detector.loop", "detector.run", "detector.cli",
                          "detector.service", "detector.sinks", "detector.window", "detector.sources", "detector.people")

RULES = [
    # (importer prefix, imported prefix, why it may not)
    ("detector", "training", "the detector runs without the training code"),
    ("detector", "benchmarks", "the detector runs without the benchmarks"),
    ("training.lib", "training.recipe", "the library is below the recipe that uses it"),
    ("training.lib", "training.tools", "the library is below the tools that use it"),
    ("training.recipe", "training.tools", "the recipe makes the models; the tools only judge them"),
    *((low, high, "finders and the painter are below the pipeline") for low in BELOW_THE_PIPELINE
      for high in THE_PIPELINE_AND_ABOVE),
]
TOP = {"detector.cli", "detector.__main__"}
"""The command line hands over to the service; nothing else of the core may reach up into it."""


def module_paths() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imported(path: Path) -> set[str]:
    """Every absolute module name a file imports, with ``from X import y`` counted as X and X.y."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return names


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    paths = module_paths()
    return {name: {m for m in imported(path) if m in paths and m != name} for name, path in paths.items()}


def test_no_module_imports_one_above_it(graph):
    broken = [f"{name} imports {dep}: {why}" for name, deps in graph.items() for dep in sorted(deps)
              for low, high, why in RULES if within(name, low) and within(dep, high)]
    assert not broken, "\n".join(broken)


def test_only_the_command_line_reaches_into_the_service(graph):
    core = [name for name in graph if within(name, "detector") and not within(name, "detector.service") and name not in TOP]
    broken = [f"{name} imports {dep}" for name in core for dep in sorted(graph[name]) if within(dep, "detector.service")]
    assert not broken, "\n".join(broken)


def test_imports_run_one_way(graph):
    """No cycle, deferred imports included: a module that needs one above it names a layering mistake."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for dep in sorted(graph[name]):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        state[name] = 2
        path.pop()
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name)):
            pytest.fail(" -> ".join(cycle))


def test_the_walk_sees_the_layout(graph):
    """The check would catch a break: it finds the imports the layout is built on."""
    assert "detector.finders.mtcnn" in graph["detector.finders"] and "detector.pipeline" in graph["detector.video"]
    assert "training.lib.config" in graph["training.recipe.train"]
    assert any(within(dep, "detector.service") for dep in graph["detector.cli"])


DOCUMENTS = ("README.md", "models/README.md", "benchmarks/README.md", "docs/decisions.md")


def test_every_documented_command_exists():
    """A command the documents give runs: each ``python -m training STEP`` is a step whose ``--help`` works, and
    each ``python benchmarks/NAME.py`` and ``python -m detector SUBCOMMAND`` is there."""
    import re
    import subprocess
    import sys

    from training.__main__ import RECIPE, TOOLS

    text = "\n".join((ROOT / doc).read_text(encoding="utf-8") for doc in DOCUMENTS)
    steps = set(re.findall(r"python -m training ([a-z_]+)", text))
    assert {"full", "evaluate", "recall"} <= steps, "the walk reads the documents"
    assert steps <= set(RECIPE + TOOLS), steps - set(RECIPE + TOOLS)
    for script in set(re.findall(r"python benchmarks/([a-z_]+)\.py", text)):
        assert (ROOT / "benchmarks" / f"{script}.py").is_file(), script
    for step in sorted(steps):
        done = subprocess.run([sys.executable, "-m", "training", step, "--help"], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0 and "usage: python -m training " + step in done.stdout, (step, done.stderr[-300:])
    for command in ([], ["serve"], ["dashboard"]):
        done = subprocess.run([sys.executable, "-m", "detector", *command, "--help"], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0 and "usage:" in done.stdout, (command, done.stderr[-300:])
