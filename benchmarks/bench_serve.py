"""Load test of ``digitnet serve`` on loopback: N concurrent clients posting canvas-sized PNGs.

Starts the real server (``python -m digitnet serve --port 0``) on 127.0.0.1, then for each
client count runs that many keep-alive HTTP/1.1 clients for a fixed time, each posting a
400x400 PNG (what the browser page sends while you draw: an MNIST test digit drawn black on
white) to ``/v1/read`` and waiting for the answer before the next. A client answered 503
waits the server's Retry-After before trying again, as a well-behaved client does.

Reported per client count: readings/s, latency p50/p95/p99 of the 200s, 503 count, errors
(anything else: other statuses, broken connections), share read right, and the server's peak
memory (VmHWM, reset before each phase where the kernel allows). Loopback only, bounded in
time and in request count; it stops by itself.

    python benchmarks/bench_serve.py [--clients 16,64] [--seconds 30] [--workers 2]
                                     [--queue 32] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"  # loopback only, by design
MAX_REQUESTS_PER_PHASE = 100_000


def canvas_pngs(count: int, seed: int = 0) -> list[tuple[bytes, str]]:
    """``count`` 400x400 PNGs of MNIST test digits drawn black on white, with their labels;
    drawn 7s where the MNIST files are absent."""
    rng = np.random.default_rng(seed)
    out: list[tuple[bytes, str]] = []
    try:
        sys.path.insert(0, str(REPO / "src"))
        from digitnet.data.mnist import load_mnist, resolve_data_dir

        x, y = load_mnist(resolve_data_dir(None), "test")
        idx = rng.choice(len(x), size=count, replace=False)
        for i in idx:
            digit = Image.fromarray(255 - x[i]).resize((280, 280), Image.BILINEAR)
            canvas = Image.new("RGB", (400, 400), "white")
            canvas.paste(
                digit.convert("RGB"),
                (60 + int(rng.integers(-30, 30)), 60 + int(rng.integers(-30, 30))),
            )
            buf = io.BytesIO()
            canvas.save(buf, "PNG")
            out.append((buf.getvalue(), str(int(y[i]))))
    except Exception as exc:  # no data: a synthetic drawing still loads the server
        print(f"MNIST test digits unavailable ({exc}); posting drawn 7s", file=sys.stderr)
        for _ in range(count):
            img = Image.new("RGB", (400, 400), "white")
            d = ImageDraw.Draw(img)
            j = rng.integers(-20, 20, size=4)
            d.line(
                [(100 + j[0], 90), (300 + j[1], 90), (180 + j[2], 330 + j[3])],
                fill="black",
                width=28,
            )
            buf = io.BytesIO()
            img.save(buf, "PNG")
            out.append((buf.getvalue(), "7"))
    return out


def start_server(workers: int, queue: int) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "digitnet",
            "serve",
            "--host",
            HOST,
            "--port",
            "0",
            "--workers",
            str(workers),
            "--queue",
            str(queue),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not m:
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, int(m.group(1))


def vm_hwm_mb(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    m = re.search(r"VmHWM:\s+(\d+) kB", text)
    return int(m.group(1)) / 1024 if m else None


def reset_peak(pid: int) -> bool:
    try:  # "5" resets the peak resident set size (Linux >= 4.0)
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


async def client(
    port: int, images: list[tuple[bytes, str]], offset: int, stop_at: float, stats: dict
) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    k = offset
    try:
        while time.perf_counter() < stop_at and stats["sent"] < MAX_REQUESTS_PER_PHASE:
            data, label = images[k % len(images)]
            k += 1
            head = (
                f"POST /v1/read HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                f"Content-Type: image/png\r\nContent-Length: {len(data)}\r\n\r\n"
            )
            t = time.perf_counter()
            stats["sent"] += 1
            try:
                writer.write(head.encode() + data)
                await writer.drain()
                status_line = await reader.readline()
                headers: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
            except (ConnectionError, asyncio.IncompleteReadError, ValueError):
                stats["errors"] += 1
                writer.close()
                reader, writer = await asyncio.open_connection(HOST, port)
                continue
            dt = time.perf_counter() - t
            parts = status_line.split()
            status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            if status == 200:
                stats["latency"].append(dt)
                stats["right"] += json.loads(body).get("text") == label
            elif status == 503:
                stats["busy"] += 1
                await asyncio.sleep(float(headers.get("retry-after", "1")))
            else:
                stats["errors"] += 1
                stats.setdefault("statuses", {}).setdefault(status, 0)
                stats["statuses"][status] += 1
    finally:
        writer.close()


async def phase(port: int, pid: int, images, clients: int, seconds: float) -> dict:
    stats: dict = {"sent": 0, "latency": [], "busy": 0, "errors": 0, "right": 0}
    reset = reset_peak(pid)
    rss_samples: list[float] = []

    async def sample() -> None:
        while True:
            try:
                text = Path(f"/proc/{pid}/status").read_text()
                m = re.search(r"VmRSS:\s+(\d+) kB", text)
                if m:
                    rss_samples.append(int(m.group(1)) / 1024)
            except OSError:
                pass
            await asyncio.sleep(0.25)

    sampler = asyncio.create_task(sample())
    t0 = time.perf_counter()
    stop_at = t0 + seconds
    await asyncio.gather(*(client(port, images, i * 7, stop_at, stats) for i in range(clients)))
    elapsed = time.perf_counter() - t0
    sampler.cancel()
    lat = np.array(stats["latency"]) * 1000
    ok = len(lat)
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": stats["sent"],
        "ok": ok,
        "images_per_s": round(ok / elapsed, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 1) if ok else None,
        "p95_ms": round(float(np.percentile(lat, 95)), 1) if ok else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 1) if ok else None,
        "busy_503": stats["busy"],
        "errors": stats["errors"],
        "statuses": stats.get("statuses", {}),
        "read_right": round(stats["right"] / ok, 4) if ok else None,
        "peak_rss_mb": round(vm_hwm_mb(pid) or 0, 1)
        if reset
        else (round(max(rss_samples), 1) if rss_samples else None),
        "peak_is": "VmHWM since phase start" if reset else "max of 4 samples/s",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", default="16,64", help="client counts, comma-separated")
    p.add_argument("--seconds", type=float, default=30.0, help="length of each phase")
    p.add_argument("--workers", type=int, default=2, help="server --workers")
    p.add_argument("--queue", type=int, default=32, help="server --queue")
    p.add_argument("--images", type=int, default=200, help="distinct images cycled through")
    p.add_argument("--json", metavar="OUT", help="write the results as JSON")
    args = p.parse_args(argv)
    counts = [int(c) for c in args.clients.split(",")]
    if not 0 < args.seconds <= 120 or any(not 0 < c <= 256 for c in counts):
        p.error("--seconds must be in (0, 120] and each client count in 1..256")

    images = canvas_pngs(args.images)
    proc, port = start_server(args.workers, args.queue)
    try:
        asyncio.run(phase(port, proc.pid, images, 2, 3.0))  # warm-up, not reported
        results = [asyncio.run(phase(port, proc.pid, images, c, args.seconds)) for c in counts]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    info = {
        "workers": args.workers,
        "queue": args.queue,
        "image": f"400x400 PNG ({np.mean([len(d) for d, _ in images]) / 1024:.1f} KB mean)",
        "cpus": os.cpu_count(),
        "results": results,
    }
    print(
        f"digitnet serve --workers {args.workers} --queue {args.queue}, {info['image']}, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        "| clients | readings/s | p50 ms | p95 ms | p99 ms | 503s | errors | read right "
        "| server peak RSS |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(
            f"| {r['clients']} | {r['images_per_s']} | {r['p50_ms']} | {r['p95_ms']} | "
            f"{r['p99_ms']} | {r['busy_503']} | {r['errors']} | "
            f"{100 * (r['read_right'] or 0):.1f}% | {r['peak_rss_mb']} MB |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(info, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
