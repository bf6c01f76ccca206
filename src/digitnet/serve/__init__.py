"""``digitnet serve``: reading digits over HTTP, and a browser page to draw them.

Needs the ``serve`` extra (FastAPI, uvicorn, python-multipart): ``pip install 'digitnet[serve]'``.
"""

from __future__ import annotations

from .app import ServeSettings, create_app

__all__ = ["ServeSettings", "create_app"]
