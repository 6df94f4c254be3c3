"""``python -m detector serve``: the detector as an HTTP service.

    server   the command: arguments, the listening socket, uvicorn with limits, signals
    app      the routes: the page, uploads, the stream, stats, health, metrics
    workers  the thread that watches a source and what it publishes
    uploads  untrusted upload bytes in, an image or a clean client error out; the upload queue
    limits   what one client may hold: a deadline for its request head, a share of the descriptors
    auth, security   the token, the allowed hosts and the browser headers
"""
