"""``digitnet serve``: the HTTP API and the browser page (``pip install 'digitnet[serve]'``).

Safe by default: it listens on loopback only; another address needs ``--token-file``, and then
every API call needs ``Authorization: Bearer <token>``. FastAPI and uvicorn are imported
inside ``run`` only, so ``digitnet --help`` works without the extra.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
from pathlib import Path

NAME = "serve"
HELP = "HTTP API and browser page for reading digits (pip install 'digitnet[serve]')"

_MAX_TOKEN_FILE = 4096


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return v


def _port(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, got {text}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < v < 1e6:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return v


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this machine only; any "
        "other address needs --token-file)",
    )
    p.add_argument("--port", type=_port, default=8000, help="TCP port (default 8000)")
    p.add_argument(
        "--model",
        metavar="CHECKPOINT",
        help="checkpoint to read with (default: the bundled model); a .onnx file "
        "runs with ONNX Runtime",
    )
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        metavar="N",
        help="threads reading images (default: CPU count, at most 4)",
    )
    p.add_argument(
        "--max-upload-mb",
        type=_positive_float,
        default=10.0,
        metavar="M",
        help="largest request body accepted, in MB (default 10)",
    )
    p.add_argument(
        "--max-pixels",
        type=_positive_int,
        default=None,
        metavar="P",
        help="largest image accepted, in pixels, checked before decoding (default 40,000,000)",
    )
    p.add_argument(
        "--queue",
        type=_positive_int,
        default=32,
        metavar="Q",
        help="requests admitted at once, running and waiting; more are answered 503 (default 32)",
    )
    p.add_argument(
        "--timeout",
        type=_positive_float,
        default=10.0,
        metavar="S",
        help="seconds one request may take before it is answered 503 (default 10)",
    )
    p.add_argument(
        "--token-file",
        metavar="F",
        help="file holding a bearer token; API calls then need 'Authorization: Bearer <token>'",
    )


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_token(path: str) -> str:
    """The token in ``path`` (surrounding whitespace stripped); ``UsageError`` when unusable."""
    from ..errors import UsageError

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"--token-file {path}: no such file")
    try:
        if p.stat().st_size > _MAX_TOKEN_FILE:
            raise UsageError(
                f"--token-file {path}: over {_MAX_TOKEN_FILE} bytes; a token is one line"
            )
        raw = p.read_bytes()
    except OSError as exc:
        raise UsageError(f"--token-file {path}: cannot read: {exc.strerror or exc}") from None
    try:
        token = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise UsageError(f"--token-file {path}: not UTF-8 text") from None
    if len(token) < 16 or any(c.isspace() or not c.isprintable() for c in token):
        raise UsageError(
            f"--token-file {path}: the token must be one word of at least 16 "
            'printable characters (make one with: python -c "import secrets; '
            'print(secrets.token_urlsafe(32))")'
        )
    return token


def run(args: argparse.Namespace) -> int:
    from ..errors import UsageError

    token = read_token(args.token_file) if args.token_file else None
    if not is_loopback(args.host) and token is None:
        raise UsageError(
            f"--host {args.host}: refusing to listen beyond this machine without "
            "--token-file (anyone on the network could use the server)"
        )
    try:
        import uvicorn

        from ..serve import ServeSettings, create_app
    except ImportError as exc:
        raise UsageError(
            f"digitnet serve needs its extra: pip install 'digitnet[serve]' "
            f"({exc.name or exc} is missing)"
        ) from None
    from ..serve._limits import DEFAULT_MAX_PIXELS
    from ..serve._reading import load_reader

    workers = args.workers if args.workers is not None else min(4, os.cpu_count() or 1)
    settings = ServeSettings(
        workers=workers,
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS,
        queue_limit=args.queue,
        timeout_s=args.timeout,
        token=token,
    )
    sock = _listen(args.host, args.port)
    try:
        reader = load_reader(args.model)
        reader.warm_up()
        app = create_app(reader, settings)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        print(
            f"digitnet serve: {reader.model_info()['name']} model, {workers} worker(s); "
            f"open http://{shown}:{port}/ (API docs at /docs)",
            flush=True,
        )
        server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)
        )
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (0: any free port), or one ``UsageError`` line."""
    from ..errors import UsageError

    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise UsageError(f"--host {host}: cannot listen there: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        # Listening from here on: a client that connects before uvicorn has started waits in
        # the backlog instead of being refused.
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"--host {host} --port {port}: cannot listen: {exc.strerror or exc}"
        ) from None
    return sock
