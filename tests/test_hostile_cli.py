"""Every command against a corpus of hostile files and flag values, each in its own process.

The contract for bad input: exactly one line on stderr (no traceback), the documented exit code
(2 for bad input, 1 for a per-image or output failure), under 20 s of CPU time and under 1 GB
peak memory (``ru_utime + ru_stime`` and ``ru_maxrss`` of that one child, from ``os.wait4``;
CPU time, not wall time, because the test machine may be shared: wall time only guards hangs).
One case per class runs by default; the rest are marked ``slow`` (each case is a fresh process
that imports torch, 2-4 s on 2 CPU cores). The corpus is made here, small and fast:
bombs are headers that claim huge sizes (a 43-byte GIF with a 9000x9000 canvas), big files are
sparse (``truncate``), checkpoints are rewritten headers of one small real checkpoint.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from digitnet.checkpoint import save_checkpoint
from digitnet.models import create_model

pytestmark = pytest.mark.skipif(not hasattr(os, "wait4"), reason="needs os.wait4 (POSIX)")

MAX_SECONDS = 20.0  # CPU seconds of the child
MAX_WALL = 120.0  # a hang, even on a loaded machine
MAX_RSS = 1 << 30
STD = {"kind": "standardize", "mean": 0.1307, "std": 0.3081}


# ----------------------------------------------------------------------------- the runner


@dataclasses.dataclass
class Result:
    code: int
    out: str
    err: str
    seconds: float  # wall
    cpu: float  # user + system of the child
    rss: int  # bytes


# Linux hands a child the high-water RSS of the process it was forked (or vforked) from, carried
# across exec: measured straight from a pytest process that has grown to gigabytes, every child
# would "use" gigabytes. So a small launcher starts the command and reports its rusage instead.
_LAUNCHER = """
import json, os, subprocess, sys
p = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL)
_, status, u = os.wait4(p.pid, 0)
with open(sys.argv[1], "w") as fh:
    json.dump({"code": os.waitstatus_to_exitcode(status), "cpu": u.ru_utime + u.ru_stime,
               "rss": u.ru_maxrss * 1024}, fh)
"""


def run_cli(argv: list[str], cwd: Path, timeout: float | None = None) -> Result:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONWARNINGS": "ignore"}
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory() as tmp,
    ):
        usage_file = Path(tmp) / "usage.json"
        t0 = time.monotonic()
        p = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _LAUNCHER,
                str(usage_file),
                sys.executable,
                "-m",
                "digitnet",
                *argv,
            ],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
        try:
            p.wait(MAX_WALL if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)  # the launcher and the command with it
            p.wait()
        seconds = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        usage = (
            json.loads(usage_file.read_text())
            if usage_file.exists()
            else {"code": -9, "cpu": float("inf"), "rss": 0}
        )
        return Result(
            usage["code"],
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            seconds,
            usage["cpu"],
            usage["rss"],
        )


# ----------------------------------------------------------------------------- the corpus


def _png(w: int, h: int, color_type: int, row: bytes) -> bytes:
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(b"\x00" + row) for _ in range(h)) + comp.flush()

    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def _long_png(w: int) -> bytes:
    """A w x 1 grey PNG (one row of w white pixels), built without holding the row twice."""
    comp = zlib.compressobj(9)
    parts = [comp.compress(b"\x00")]
    block = b"\xff" * (1 << 20)
    left = w
    while left > 0:
        parts.append(comp.compress(block[: min(left, len(block))]))
        left -= len(block)
    parts.append(comp.flush())

    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    ihdr = struct.pack(">IIBBBBB", w, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", b"".join(parts))
        + chunk(b"IEND", b"")
    )


def _gif_canvas(w: int, h: int) -> bytes:
    """43 bytes: a w x h logical screen, one transparent 1x1 frame."""
    b = b"GIF89a" + struct.pack("<HH", w, h) + b"\x80\x00\x00" + b"\x00\x00\x00\xff\xff\xff"
    b += b"\x21\xf9\x04\x01\x00\x00\x00\x00"
    b += b"\x2c" + struct.pack("<HHHH", 0, 0, 1, 1) + b"\x00" + b"\x02\x02\x44\x01\x00\x3b"
    return b


def _rewrite_header(data: bytes, edit: Callable[[dict], object]) -> bytes:
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    edit(header)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data[8 + n :]


def _raw_header(data: bytes, raw: bytes) -> bytes:
    (n,) = struct.unpack("<Q", data[:8])
    return struct.pack("<Q", len(raw)) + raw + data[8 + n :]


def _edit_meta(data: bytes, edit: Callable[[dict], object]) -> bytes:
    def f(h: dict) -> None:
        meta = json.loads(h["__metadata__"]["digitnet"])
        edit(meta)
        h["__metadata__"]["digitnet"] = json.dumps(meta)

    return _rewrite_header(data, f)


def _meta_of(model) -> dict:
    return {"model": model.model_name, "model_args": dataclasses.asdict(model.config), "input": STD}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("hostile")
    torch.manual_seed(0)
    model = create_model("fast").eval()
    base = save_checkpoint(d / "base.safetensors", model, _meta_of(model))
    good = base.read_bytes()
    w = {}  # name -> bytes of each checkpoint variant (written without sidecars)

    # --- metadata of the wrong type or shape
    w["meta_list.safetensors"] = _rewrite_header(good, lambda h: h.__setitem__("__metadata__", [1]))
    w["meta_int.safetensors"] = _rewrite_header(
        good, lambda h: h["__metadata__"].__setitem__("digitnet", 5)
    )
    w["input_str.safetensors"] = _edit_meta(good, lambda m: m.__setitem__("input", "standardize"))
    w["input_nomean.safetensors"] = _edit_meta(
        good, lambda m: m.__setitem__("input", {"kind": "standardize", "std": 0.3})
    )
    w["input_std0.safetensors"] = _edit_meta(
        good, lambda m: m.__setitem__("input", {"kind": "standardize", "mean": 0.1, "std": 0})
    )
    w["input_nanmean.safetensors"] = _edit_meta(
        good,
        lambda m: m.__setitem__("input", {"kind": "standardize", "mean": float("nan"), "std": 0.3}),
    )
    w["input_kind.safetensors"] = _edit_meta(
        good, lambda m: m.__setitem__("input", {"kind": "upside-down"})
    )
    w["args_type.safetensors"] = _edit_meta(
        good, lambda m: m["model_args"].__setitem__("widths", "abc")
    )
    w["args_wide.safetensors"] = _edit_meta(
        good, lambda m: m["model_args"].__setitem__("widths", [8000, 8000, 1])
    )
    w["args_deep.safetensors"] = _edit_meta(
        good, lambda m: m["model_args"].__setitem__("depths", [10**7, 1, 1])
    )
    w["train_images_str.safetensors"] = _edit_meta(
        good, lambda m: m.__setitem__("data", {"train_images": "many"})
    )
    deep = "[" * 100_000 + "]" * 100_000
    w["nested_meta.safetensors"] = _rewrite_header(
        good, lambda h: h["__metadata__"].__setitem__("digitnet", deep)
    )
    w["nested_header.safetensors"] = _raw_header(good, ('{"a":' + deep + "}").encode())
    # --- tampering: weights changed and the embedded save_id edited to disown the sidecar
    tampered = bytearray(good)
    tampered[-1] ^= 0x01
    w["tampered.safetensors"] = _edit_meta(
        bytes(tampered), lambda m: m.__setitem__("save_id", "0" * 32)
    )
    # --- broken weights
    for name, fix in {
        "negvar": lambda m: m.features[1].running_var.fill_(-1.0),
        "huge": lambda m: m.features[0].weight.mul_(1e38),
    }.items():
        m2 = create_model("fast").eval()
        with torch.no_grad():
            fix(m2)
        p = save_checkpoint(d / f"{name}.safetensors", m2, _meta_of(m2))
        os.unlink(p.with_suffix(".json"))
    for k in (5, 20):
        m2 = create_model("fast", num_classes=k).eval()
        p = save_checkpoint(d / f"classes{k}.safetensors", m2, _meta_of(m2))
        os.unlink(p.with_suffix(".json"))
    # --- .pt files
    for name, t in {
        "fp8": lambda: torch.zeros(4, dtype=torch.float8_e4m3fn),
        "sparse": lambda: torch.zeros(4, 4).to_sparse(),
        "meta": lambda: torch.empty(4, device="meta"),
        "complex": lambda: torch.zeros(4, dtype=torch.complex64),
    }.items():
        torch.save({"features.0.weight": t()}, d / f"{name}.pt")
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(4)}, buf)
    with zipfile.ZipFile(d / "zipbomb.pt", "w") as zout:  # a real torch.save plus 300 MB of zeros
        with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zin:
            for info in zin.infolist():
                zout.writestr(info, zin.read(info))
        with zout.open("archive/data/big", "w", force_zip64=True) as fh:
            block = bytes(1 << 20)
            for _ in range(300):
                fh.write(block)
    (d / "garbage.pt").write_bytes(bytes(range(256)) * 4)
    (d / "st_renamed.pt").write_bytes(good)
    for name, data in w.items():
        (d / name).write_bytes(data)
    # --- a sidecar nested too deeply beside a valid checkpoint
    side = save_checkpoint(d / "deepside.safetensors", model, _meta_of(model))
    side.with_suffix(".json").write_text(deep)

    # --- images
    img = Image.new("L", (60, 60), 235)
    ImageDraw.Draw(img).line([(15, 12), (45, 12), (25, 50)], fill=20, width=5)
    img.save(d / "seven.png")
    (d / "canvas.gif").write_bytes(_gif_canvas(9000, 9000))
    (d / "transparent.png").write_bytes(_png(9000, 9000, 6, bytes(4 * 9000)))
    (d / "long.png").write_bytes(_long_png(80_000_000))
    with open(d / "garbage3g.png", "wb") as fh:
        fh.truncate(3 * 10**9)  # sparse: no disk used
    with open(d / "garbage100m.png", "wb") as fh:
        fh.truncate(100 * 10**6)
    (d / "new\nline.png").write_bytes(b"not an image")

    # --- config files
    (d / "list.json").write_text("[1, 2]")
    (d / "abc.json").write_text('{"epochs": "abc"}')
    (d / "unknown.json").write_text('{"epochz": 3}')
    (d / "latin1.json").write_bytes(b'{"model": "caf\xe9"}')
    (d / "deep.json").write_text(deep)
    (d / "wide.json").write_text('{"model_args": {"widths": [8000, 8000, 1]}}')
    (d / "bad.toml").write_text("[models\nx = ")
    os.mkfifo(d / "fifo")
    os.mkfifo(d / "fifo.safetensors")
    os.mkfifo(d / "fifo.toml")
    os.mkfifo(d / "fifo.json")
    (d / "afile").write_text("x")
    return d


# ----------------------------------------------------------------------------- the cases

# (id, argv, exit code, text the one stderr line must contain). "{d}" is the corpus folder,
# "{m}" the MNIST folder. Per-image failures of ``predict`` exit 1 (other images still read).
TRAIN = ["train", "--limit-train", "64", "--epochs", "1", "--quiet", "--out", "{d}/run"]
CKPT_CASES = [
    ("meta_list", "__metadata__ must map names to strings"),
    ("meta_int", "__metadata__ must map names to strings"),
    ("input_str", "metadata 'input' has the wrong type"),
    ("input_nomean", "'input' mean must be a finite number"),
    ("input_std0", "'input' std must be a number"),
    ("input_nanmean", "'input' mean must be a finite number"),
    ("input_kind", "kind 'upside-down' is unknown"),
    ("args_type", "widths must be a list"),
    ("args_wide", "parameters, too large"),
    ("args_deep", "depths: 10000000 is outside"),
    ("train_images_str", "train_images must be a count"),
    ("nested_meta", "nested 100000 levels deep"),
    ("nested_header", "nested 100001 levels deep"),
    ("tampered", "tensor data's sha256"),
    ("negvar", "negative variance"),
    ("huge", "beyond any trained digit model"),
    ("classes5", "5-class head"),
    ("classes20", "20-class head"),
]
PT_CASES = [
    ("fp8.pt", "dtype float8_e4m3fn"),
    ("sparse.pt", "sparse_coo"),
    ("meta.pt", "on device 'meta'"),
    ("complex.pt", "dtype complex64"),
    ("zipbomb.pt", "refused before unpacking"),
    ("garbage.pt", "not a PyTorch checkpoint"),
    ("fifo.safetensors", "is a FIFO"),
]

CASES: list[tuple[str, list[str], int, str]] = []
for name, want in CKPT_CASES:
    CASES.append(
        (
            f"predict-model-{name}",
            ["predict", "{d}/seven.png", "--model", f"{{d}}/{name}.safetensors"],
            2,
            want,
        )
    )
for name, want in PT_CASES:
    CASES.append(
        (f"predict-model-{name}", ["predict", "{d}/seven.png", "--model", f"{{d}}/{name}"], 2, want)
    )
CASES += [
    # the same files through the other commands that read checkpoints
    (
        "evaluate-args_wide",
        ["evaluate", "{d}/args_wide.safetensors", "--device", "cpu"],
        2,
        "too large",
    ),
    (
        "evaluate-classes5",
        ["evaluate", "{d}/classes5.safetensors", "--device", "cpu"],
        2,
        "5-class head",
    ),
    ("evaluate-zipbomb", ["evaluate", "{d}/zipbomb.pt", "--device", "cpu"], 2, "unpacking"),
    ("evaluate-fifo", ["evaluate", "{d}/fifo", "--device", "cpu"], 2, "is a FIFO"),
    (
        "export-nested_meta",
        ["export", "{d}/nested_meta.safetensors", "--out", "{d}/x.onnx"],
        2,
        "nested",
    ),
    ("export-fifo", ["export", "{d}/fifo.safetensors", "--out", "{d}/y.onnx"], 2, "is a FIFO"),
    (
        "export-onto-itself",
        ["export", "{d}/base.safetensors", "--out", "{d}/base.safetensors"],
        2,
        "base.safetensors",
    ),
    (
        "resume-pt",
        [*TRAIN, "--resume", "{d}/sparse.pt", "--data-dir", "{m}"],
        2,
        "is a PyTorch (torch.save) file",
    ),
    (
        "resume-nested",
        [*TRAIN, "--resume", "{d}/nested_header.safetensors", "--data-dir", "{m}"],
        2,
        "nested",
    ),
    (
        "resume-fifo",
        [*TRAIN, "--resume", "{d}/fifo.safetensors", "--data-dir", "{m}"],
        2,
        "is a FIFO",
    ),
    # images: refused (exit 1, a per-image failure) or reduced with bounded memory (exit 0/1)
    ("image-gif-canvas", ["predict", "{d}/canvas.gif"], -1, ""),
    ("image-transparent-9000", ["predict", "{d}/transparent.png"], 1, "too large to decode"),
    ("image-1x80000000", ["predict", "{d}/long.png"], -1, ""),
    ("image-3gb-garbage", ["predict", "{d}/garbage3g.png"], 1, "too large for an image"),
    ("image-100mb-garbage", ["predict", "{d}/garbage100m.png"], 1, "no known image signature"),
    ("image-fifo", ["predict", "{d}/fifo"], 1, "is a FIFO"),
    ("image-newline-name", ["predict", "{d}/new\nline.png"], 1, "new\\nline.png"),
    # config files
    ("config-list", [*TRAIN, "--config", "{d}/list.json"], 2, "not a list"),
    ("config-abc", [*TRAIN, "--config", "{d}/abc.json"], 2, "epochs must be an integer"),
    ("config-unknown", [*TRAIN, "--config", "{d}/unknown.json"], 2, "did you mean 'epochs'"),
    ("config-latin1", [*TRAIN, "--config", "{d}/latin1.json"], 2, "not UTF-8"),
    ("config-deep", [*TRAIN, "--config", "{d}/deep.json"], 2, "nested too deeply"),
    ("config-wide", [*TRAIN, "--config", "{d}/wide.json"], 2, "parameters"),
    ("config-fifo", [*TRAIN, "--config", "{d}/fifo.json"], 2, "is a FIFO"),
    ("config-folder", [*TRAIN, "--config", "{d}"], 2, "is a folder"),
    ("experiment-fifo", ["experiment", "--config", "{d}/fifo.toml"], 2, "FIFO"),
    ("experiment-bad-toml", ["experiment", "--config", "{d}/bad.toml"], 2, "bad.toml"),
    # flag values
    ("flag-momentum", [*TRAIN, "--momentum", "-1"], 2, "--momentum must be in [0, 1]"),
    ("flag-threads", [*TRAIN, "--threads", "-1"], 2, "--threads must be in 1..1024"),
    ("flag-seed", [*TRAIN, "--seed", str(2**70)], 2, "--seed must be in"),
    ("flag-lr-inf", [*TRAIN, "--lr", "inf"], 2, "--lr must be a finite number"),
    ("flag-lr-nan", [*TRAIN, "--lr", "nan"], 2, "--lr must be a finite number"),
    ("flag-wd-nan", [*TRAIN, "--weight-decay", "nan"], 2, "--weight-decay must be a finite"),
    ("flag-wd-neg", [*TRAIN, "--weight-decay", "-1"], 2, "--weight-decay must be in"),
    ("bench-min-time-nan", ["bench", "--min-time", "nan"], 2, "--min-time"),
    ("data-info-fifo", ["data", "info", "--data-dir", "{d}/fifo"], 2, "fifo"),
    ("models-unknown-flag", ["models", "--nope"], 2, "unrecognized arguments"),
]


# One case of each class runs by default; the others are marked slow.
FAST = {
    "predict-model-args_wide",
    "predict-model-nested_header",
    "predict-model-tampered",
    "predict-model-huge",
    "predict-model-zipbomb.pt",
    "predict-model-garbage.pt",
    "predict-model-fifo.safetensors",
    "resume-pt",
    "image-gif-canvas",
    "image-transparent-9000",
    "image-3gb-garbage",
    "image-newline-name",
    "config-abc",
    "config-fifo",
    "flag-momentum",
    "flag-seed",
}


@pytest.mark.parametrize(
    ("argv", "code", "want"),
    [pytest.param(*c[1:], id=c[0], marks=() if c[0] in FAST else pytest.mark.slow) for c in CASES],
)
def test_hostile(corpus: Path, mnist_dir: Path, argv: list[str], code: int, want: str) -> None:
    args = [a.replace("{d}", str(corpus)).replace("{m}", str(mnist_dir)) for a in argv]
    r = run_cli(args, cwd=corpus)
    lines = [ln for ln in r.err.splitlines() if ln.strip()]
    assert "Traceback" not in r.err, r.err[-2000:]
    if code == -1:  # bounded, no crash; the image may be blank (exit 1) or read (exit 0)
        assert r.code in (0, 1), r.err
        assert len(lines) <= 1, r.err
    else:
        assert r.code == code, (r.code, r.err[-1000:])
        assert len(lines) == 1, r.err
        assert want in lines[0], lines[0]
    assert r.cpu < MAX_SECONDS, f"{r.cpu:.1f} CPU s"
    assert r.seconds < MAX_WALL, f"{r.seconds:.1f} s"
    assert r.rss < MAX_RSS, f"{r.rss / 2**20:.0f} MiB"


def test_export_onto_itself_keeps_the_source(corpus: Path) -> None:
    before = (corpus / "base.safetensors").read_bytes()
    run_cli(
        ["export", str(corpus / "base.safetensors"), "--out", str(corpus / "base.safetensors")],
        cwd=corpus,
    )
    assert (corpus / "base.safetensors").read_bytes() == before


@pytest.mark.slow
def test_safetensors_renamed_pt_is_read_as_safetensors(corpus: Path) -> None:
    r = run_cli(
        ["predict", str(corpus / "seven.png"), "--model", str(corpus / "st_renamed.pt"), "--json"],
        cwd=corpus,
    )
    assert r.code == 0, r.err
    assert "Traceback" not in r.err


@pytest.mark.slow
def test_a_good_checkpoint_with_a_nested_sidecar_still_loads(corpus: Path) -> None:
    # The sidecar is only a copy of the metadata; a broken one is ignored, not fatal.
    r = run_cli(
        ["predict", str(corpus / "seven.png"), "--model", str(corpus / "deepside.safetensors")],
        cwd=corpus,
    )
    assert r.code == 0, r.err


def test_the_runner_measures_the_command_not_this_process(tmp_path: Path) -> None:
    # The memory bound must be able to fail: a command that holds 400 MB is seen as such, and a
    # trivial one is not charged with this (large) pytest process's own peak.
    ballast = bytearray(600 << 20)  # this process grows; the children must not inherit it
    ballast[::4096] = b"x" * len(ballast[::4096])  # touched, so it is resident
    r = run_cli(["models", "--json"], tmp_path)
    assert r.code == 0 and r.rss < 500 << 20, f"{r.rss / 2**20:.0f} MiB"
    del ballast
    code = "b = bytearray(400 << 20); b[::4096] = b'x' * len(b[::4096])"
    env_py = [sys.executable, "-c", code]
    usage = tmp_path / "u.json"
    subprocess.run([sys.executable, "-c", _LAUNCHER, str(usage), *env_py], check=True)
    assert json.loads(usage.read_text())["rss"] > 400 << 20
