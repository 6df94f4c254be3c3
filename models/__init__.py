"""The shipped nets, installed as the package ``detector.models``.

They stay here, beside their model card, and ``pyproject.toml`` maps this
folder into the detector package so that an installed detector (a wheel, run
from any folder) finds them with ``importlib.resources`` like any package data.
"""
