"""``python -m training paired A.json B.json``: do two candidates really differ, face by face?

Why: two trainings of one recipe differ by 2-3 points on the scene faces, so an
accuracy gap between two candidates says little by itself. Judged on the same
faces (two ``training.recipe.evaluate --json`` runs over the same sets and split), the
faces both get right or both get wrong say nothing about which is better; only
the faces exactly one of them gets right do. Their split is tested with the
exact two-sided sign test (McNemar's test for paired verdicts): a p-value near 1
means the gap is what chance alone gives.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from scipy.stats import binomtest


@dataclass
class Paired:
    """Faces judged in both runs, and which of the two got each one right."""

    n: int
    a_only: list[str]
    b_only: list[str]
    both_wrong: int

    @property
    def p_value(self) -> float:
        """Exact two-sided sign test on the faces only one run gets right (1.0 when there are none)."""
        changed = len(self.a_only) + len(self.b_only)
        return binomtest(len(self.a_only), changed, 0.5).pvalue if changed else 1.0


def pair(a: dict, b: dict) -> Paired:
    """Set two ``training.recipe.evaluate`` results side by side on the faces both judged."""
    va, vb = a["verdicts"], b["verdicts"]
    common = sorted(set(va) & set(vb))
    right_a = {k for k in common if va[k][0] == va[k][1]}
    right_b = {k for k in common if vb[k][0] == vb[k][1]}
    return Paired(len(common), sorted(right_a - right_b), sorted(right_b - right_a),
                  sum(k not in right_a and k not in right_b for k in common))


def load(path: Path) -> dict:
    """A ``training.recipe.evaluate`` JSON with per-face verdicts; ValueError naming what is wrong."""
    try:
        result = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read {path}: {error}") from None
    if not isinstance(result, dict) or not isinstance(result.get("verdicts"), dict):
        raise ValueError(f"{path} has no per-face verdicts (written by training.recipe.evaluate --json)")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training paired", description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="training.recipe.evaluate --json of the first candidate")
    parser.add_argument("b", type=Path, help="the second, over the same sets and split")
    parser.add_argument("--list", action="store_true", help="also name the faces only one of them gets right")
    args = parser.parse_args(argv)
    try:
        a, b = load(args.a), load(args.b)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result = pair(a, b)
    if result.n == 0:
        print("error: the two runs judged no face in common (other sets or splits?)", file=sys.stderr)
        return 2
    print(f"{result.n} faces judged by both: {len(result.a_only)} right only in A ({args.a.name}), "
          f"{len(result.b_only)} right only in B ({args.b.name}), {result.both_wrong} wrong in both; "
          f"sign test p = {result.p_value:.3f}")
    if args.list:
        for tag, keys, run in (("A", result.a_only, a), ("B", result.b_only, b)):
            other = b if run is a else a
            for key in keys:
                print(f"{tag} only: {key} (true {run['verdicts'][key][0]}; other run said {other['verdicts'][key][1]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
