"""``python -m detector serve``: the detector as an HTTP service (``app``), its stream worker (``workers``),
upload checks (``uploads``) and token check (``auth``)."""
