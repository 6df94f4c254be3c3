"""``python -m training STEP [ARGS]``: one step of the recipe, or a tool, by name.

One entry point, so the steps a person can run are listed in one place; each step keeps
its own ``--help``. Steps are imported only when run: listing them loads no TensorFlow.
"""

from __future__ import annotations

import importlib
import sys

RECIPE = ("full", "synth", "crop", "clean", "compare", "train", "neck", "finetune_mtcnn", "export_mtcnn", "export",
          "quantize", "evaluate")
"""The steps that make the shipped models, in the order ``full`` runs them (``clean`` is a person's review)."""
TOOLS = ("recall", "paired")
"""Tools that judge: the face finder's recall, and two runs' verdicts paired photo by photo."""


def module_of(step: str) -> str:
    """The module that runs ``step``; ValueError for a name that is no step."""
    if step in RECIPE:
        return f"training.recipe.{step}"
    if step in TOOLS:
        return f"training.tools.{step}"
    raise ValueError(f"unknown step {step!r}; one of {', '.join(RECIPE + TOOLS)}")


def summary(step: str) -> str:
    """The first line of the step's docstring, read without importing it (no TensorFlow)."""
    import ast
    from importlib.util import find_spec

    origin = find_spec(module_of(step)).origin
    with open(origin, encoding="utf-8") as handle:
        doc = ast.get_docstring(ast.parse(handle.read())) or ""
    line = doc.split("\n\n")[0].replace("\n", " ")
    return line.split(":", 1)[1].strip() if line.startswith("``") and ":" in line else line


def usage() -> str:
    rows = [f"  {step:<15} {summary(step)}" for step in RECIPE]
    tools = [f"  {step:<15} {summary(step)}" for step in TOOLS]
    return "\n".join(["usage: python -m training STEP [ARGS]  (python -m training STEP --help for its options)",
                      "", "the recipe:", *rows, "", "tools:", *tools])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    try:
        module = importlib.import_module(module_of(argv[0]))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    sys.argv = [f"python -m training {argv[0]}", *argv[1:]]
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
