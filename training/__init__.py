"""Offline tooling: how the shipped models are made (``recipe``), what the steps share (``lib``),
and tools that judge models and data (``tools``). Nothing here is imported by the detector at run time.

``python -m training STEP ...`` runs one step; ``python -m training --help`` lists them.
"""
