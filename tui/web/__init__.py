"""The web gallery (`wan-tui serve`) and the shareable export (`wan-tui export`).

A small Starlette app run by uvicorn in its own process, beside the engine and never inside
the dashboard's event loop: it reads the history, serves each finished job's poster and
MP4 by job id (with HTTP range requests, so a browser can seek), pushes finished jobs to
open pages as server-sent events, and records picks (star / reject). `guard` keeps it
private: a token, the Host header, same-origin POSTs.
"""
