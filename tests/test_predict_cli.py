"""``digitnet predict``: inputs, output formats, labels from names, errors, exit codes.

Most tests swap in a stand-in network (a fixed rule on the 28x28 input) so they test the command
itself; the end-to-end test with the bundled model skips only while its weights file is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitnet.cli import main
from digitnet.commands import predict as predict_cmd
from digitnet.commands.predict import expand_inputs, label_from_name


class Tall:
    """Stand-in network: '1' for tall thin strokes, '7' otherwise (enough to check plumbing)."""

    name = "stand-in"

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        out = np.full((len(x), 10), 0.01, np.float32)
        for i, im in enumerate(x):
            cols = np.nonzero(im.max(axis=0) > 0.5)[0]
            out[i, 1 if np.ptp(cols) < 8 else 7] = 0.91
        return out


@pytest.fixture
def stand_in(monkeypatch):
    monkeypatch.setattr(predict_cmd, "_load_network", lambda model, backend: Tall())


def draw(path: Path, text: str, fmt: str | None = None) -> Path:
    """Dark strokes on white: '1' a vertical bar, '7' a bar and a diagonal."""
    img = Image.new("L", (70 * len(text) + 40, 140), 240)
    d = ImageDraw.Draw(img)
    for k, ch in enumerate(text):
        x = 30 + 70 * k
        if ch == "1":
            d.line([(x + 25, 25), (x + 25, 115)], fill=20, width=8)
        else:
            d.line([(x, 25), (x + 50, 25), (x + 15, 115)], fill=20, width=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, fmt)
    return path


def run_json(args, capsys):
    code = main(["predict", "--json", *map(str, args)])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_json_lines_and_boxes(tmp_path, stand_in, capsys):
    p = draw(tmp_path / "17.png", "17")
    code, rows, err = run_json([p], capsys)
    assert code == 0 and err == ""
    (row,) = rows
    assert row["path"] == str(p) and row["error"] is None and row["text"] == "17"
    first, second = row["digits"]
    assert first["digit"] == 1 and first["confidence"] == pytest.approx(0.91, abs=1e-3)
    assert first["top"][0] == [1, pytest.approx(0.91, abs=1e-3)] and len(first["top"]) == 3
    assert first["box"][0] < second["box"][0]  # left to right, in image pixels
    x, y, _w, h = second["box"]
    assert 80 <= x <= 110 and 15 <= y <= 35 and 80 <= h <= 105


def test_bad_inputs_are_one_line_each_and_others_still_read(tmp_path, stand_in, capsys):
    good = draw(tmp_path / "7.png", "7")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "page.png").write_text("<html>hi</html>")
    half = draw(tmp_path / "half.png", "77")
    half.write_bytes(half.read_bytes()[:200])
    (tmp_path / "nothing").mkdir()
    args = [
        good,
        tmp_path / "empty.png",
        tmp_path / "page.png",
        half,
        tmp_path / "missing.png",
        tmp_path / "nothing",
        tmp_path / "*.nomatch",
    ]
    code = main(["predict", *map(str, args)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 6, lines
    assert all(line.startswith("digitnet predict: ") for line in lines)
    assert "7.png" in out and " 7 " in out  # the good image was still read
    code, rows, _ = run_json(args, capsys)
    assert code == 1 and [r["error"] is None for r in rows] == [True] + [False] * 6
    assert "empty" in rows[1]["error"] and "not an image" in rows[2]["error"]


def test_blank_image_reads_as_empty_text_and_exits_1(tmp_path, stand_in, capsys):
    # A blank image is read (empty text, the reason in "message"), named in one line on
    # stderr, and the exit status says not every image had a digit; the others are read.
    p = tmp_path / "blank.png"
    Image.new("L", (200, 150), 235).save(p)
    code, (row,), err = run_json([p], capsys)
    assert code == 1 and row["text"] == "" and row["digits"] == [] and row["message"]
    assert err.strip() == f"digitnet predict: {p}: {row['message']}"
    draw(tmp_path / "7.png", "7", "PNG")
    code, rows, err = run_json([tmp_path / "7.png", p], capsys)
    assert code == 1 and [r["text"] for r in rows] == ["7", ""]
    assert len(err.strip().splitlines()) == 1 and "blank.png" in err
    code, rows, err = run_json([tmp_path / "7.png"], capsys)
    assert code == 0 and err == ""


def test_folders_globs_and_formats(tmp_path, stand_in, capsys):
    for name, fmt in [
        ("a/1.png", "PNG"),
        ("a/b/7.jpg", "JPEG"),
        ("a/b/c/1.bmp", "BMP"),
        ("a/7.gif", "GIF"),
        ("a/1.tiff", "TIFF"),
        ("a/7.webp", "WEBP"),
    ]:
        draw(tmp_path / name, name.split("/")[-1][0], fmt)
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    code, rows, _ = run_json([tmp_path / "a"], capsys)
    assert code == 0 and len(rows) == 6
    assert all(Path(r["path"]).name[0] == r["text"] for r in rows)
    code, rows, _ = run_json([tmp_path / "a" / "**" / "*.png"], capsys)
    assert code == 0 and [Path(r["path"]).name for r in rows] == ["1.png"]


def test_labels_from_names_accuracy(tmp_path, stand_in, capsys):
    draw(tmp_path / "7_anna.png", "7")
    draw(tmp_path / "17-form.png", "17")
    draw(tmp_path / "1" / "scan.png", "7")  # folder says 1, the image says 7: wrong
    code = main(["predict", "--labels-from-names", str(tmp_path)])
    out, _ = capsys.readouterr()
    assert code == 0
    assert "accuracy: 2/3 = 66.7%" in out
    assert out.count("right") == 2 and out.count("WRONG") == 1


def test_label_from_name():
    assert label_from_name("x/7.png") == "7"
    assert label_from_name("x/7_anna.jpg") == "7"
    assert label_from_name("x/2026-form.png") == "2026"
    assert label_from_name("digits/3/anna.png") == "3"
    assert label_from_name("x/anna.png") is None


def test_single_and_min_confidence_and_save_preprocessed(tmp_path, stand_in, capsys):
    p = draw(tmp_path / "17.png", "17")
    out_dir = tmp_path / "seen"
    code, (row,), _ = run_json(
        ["--single", "--min-confidence", "0.95", "--save-preprocessed", out_dir, p], capsys
    )
    assert code == 0 and len(row["digits"]) == 1 and row["digits"][0]["low_confidence"]
    saved = sorted(out_dir.glob("*.png"))
    assert len(saved) == 1
    im = np.asarray(Image.open(saved[0]))
    assert im.shape == (28, 28) and im.max() == 255 and im[0].max() == 0


@pytest.mark.parametrize("bad", [["--top-k", "0"], ["--min-confidence", "1.5"]])
def test_usage_errors(tmp_path, bad, capsys):
    assert main(["predict", *bad, str(tmp_path)]) == 2


def test_no_torch_for_bad_paths_only(tmp_path, monkeypatch, capsys):
    def boom(model, backend):
        raise AssertionError("the model must not load when no image can be read")

    monkeypatch.setattr(predict_cmd, "_load_network", boom)
    assert main(["predict", str(tmp_path / "missing.png")]) == 1


def test_expand_inputs_keeps_order_and_reports_missing(tmp_path):
    draw(tmp_path / "d" / "b.png", "1")
    draw(tmp_path / "d" / "a.png", "1")
    got = expand_inputs([str(tmp_path / "d"), str(tmp_path / "zz.png")])
    assert [Path(p).name for p, _ in got] == ["a.png", "b.png", "zz.png"]
    assert got[2][1] and "no such file" in got[2][1]


def test_bundled_model_end_to_end(tmp_path, capsys, mnist_dir):
    from digitnet.inference import bundled_model_path

    if not bundled_model_path().exists():
        pytest.skip("bundled weights not in this checkout yet")
    import gzip

    raw = gzip.open(mnist_dir / "t10k-images-idx3-ubyte.gz").read()
    x = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)[:20]
    y = np.frombuffer(
        gzip.open(mnist_dir / "t10k-labels-idx1-ubyte.gz").read(), np.uint8, offset=8
    )[:20]
    for i, (d, lab) in enumerate(zip(x, y, strict=True)):
        big = Image.fromarray(255 - d).resize((140, 140), Image.BICUBIC)
        big.save(tmp_path / f"{lab}_{i}.png")
    code = main(["predict", "--labels-from-names", str(tmp_path)])
    out, _ = capsys.readouterr()
    right = int(out.split("accuracy: ")[1].split("/")[0])
    assert code == 0 and right >= 19


def test_many_images_through_worker_processes(tmp_path, stand_in, capsys):
    # Enough images to take the parallel path; results come back in input order.
    n = predict_cmd._PARALLEL_FROM + 2
    for i in range(n):
        draw(tmp_path / f"{i:03d}_{'1' if i % 2 else '7'}.png", "1" if i % 2 else "7")
    (tmp_path / "999_bad.png").write_bytes(b"not a png")
    code, rows, _ = run_json(["--jobs", "2", tmp_path], capsys)
    assert code == 1 and len(rows) == n + 1
    assert [r["text"] for r in rows[:n]] == ["1" if i % 2 else "7" for i in range(n)]
    assert rows[-1]["error"] and "999_bad.png" in rows[-1]["error"]


def test_reject_option_shows_question_mark_and_keeps_alternatives(tmp_path, stand_in, capsys):
    p = draw(tmp_path / "17.png", "17")
    # The stand-in reads every digit at 0.91: below 0.95 each is rejected, above 0.9 none is.
    code, (row,), _ = run_json(["--min-confidence", "0.95", p], capsys)
    assert code == 0 and row["text"] == "??"
    assert [d["digit"] for d in row["digits"]] == [1, 7]  # best guesses kept in JSON
    assert all(len(d["top"]) == 3 and d["low_confidence"] for d in row["digits"])
    assert main(["predict", "--min-confidence", "0.95", str(p)]) == 0
    out = capsys.readouterr().out
    assert " ??  " in out and "shown as ?" in out
    code, (row,), _ = run_json(["--min-confidence", "0.9", p], capsys)
    assert row["text"] == "17"
    code, (row,), _ = run_json([p], capsys)  # without the flag: LOW marks only, no '?'
    assert row["text"] == "17"
    assert main(["predict", "--min-confidence", "nan", str(p)]) == 2


def test_save_preprocessed_never_overwrites_inputs(tmp_path, monkeypatch, capsys):
    def boom(model, backend):
        raise AssertionError("refused before any image is read")

    monkeypatch.setattr(predict_cmd, "_load_network", boom)
    folder = tmp_path / "mine"
    img = draw(folder / "7.png", "7")
    before = img.read_bytes()
    for target in (folder, folder / "."):
        assert main(["predict", str(folder), "--save-preprocessed", str(target)]) == 2
        err = capsys.readouterr().err
        assert "--save-preprocessed" in err and len(err.strip().splitlines()) == 1
    # The folder of an input file (a file named 7_0.png there would be overwritten).
    draw(folder / "7_0.png", "7")
    assert main(["predict", str(folder / "7.png"), "--save-preprocessed", str(folder)]) == 2
    assert "holds the input" in capsys.readouterr().err
    assert img.read_bytes() == before


def test_save_preprocessed_checked_writable_before_reading(tmp_path, monkeypatch, capsys):
    def boom(model, backend):
        raise AssertionError("refused before any image is read")

    monkeypatch.setattr(predict_cmd, "_load_network", boom)
    img = draw(tmp_path / "in" / "7.png", "7")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["predict", str(img), "--save-preprocessed", str(blocker / "sub")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "a-file" in err


class Interrupting(Tall):
    """Reads like Tall, then 'Ctrl-C' once more than ``after`` images went through."""

    def __init__(self, after: int) -> None:
        self.after, self.seen = after, 0

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        self.seen += len(x)
        if self.seen > self.after:
            raise KeyboardInterrupt
        return super().predict_proba(x)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_ctrl_c_prints_the_readings_made_and_exits_130(tmp_path, monkeypatch, capsys, fmt):
    for i in range(40):
        draw(tmp_path / f"{i:02d}_1.png", "1")
    monkeypatch.setattr(predict_cmd, "_load_network", lambda m, b: Interrupting(after=20))
    args = ["predict", "--jobs", "1", str(tmp_path)] + (["--json"] if fmt == "json" else [])
    assert main(args) == 130
    out, err = capsys.readouterr()
    lines = [ln for ln in out.splitlines() if ln.strip()]
    if fmt == "json":
        rows = [json.loads(ln) for ln in lines]
        assert len(rows) == 16 and all(r["text"] == "1" for r in rows)  # the first chunk
    else:
        assert len(lines) == 1 + 16 and lines[1].split()[0].endswith("00_1.png")
    assert "interrupted after 16 of 40" in err and "Traceback" not in err


def test_one_folder_reads_the_same_through_predict_and_the_gui(tmp_path, capsys):
    """The CLI's folder reading and the GUI's (and the library's read_files) agree."""
    from digitnet.inference import load_predictor
    from digitnet.preprocess import read_files, reading_to_json

    folder = tmp_path / "digits"
    draw(folder / "7" / "anna.png", "7")  # label from the parent folder
    draw(folder / "1_bob.png", "1")
    draw(folder / "sub" / "17.PNG", "17")  # upper-case extension, nested folder
    draw(folder / "71.webp", "71", "WEBP")
    (folder / ".hidden.png").write_bytes(b"x")  # hidden: skipped by both
    (folder / "notes.txt").write_text("not an image")  # not an image extension: skipped
    assert main(["predict", "--json", "--jobs", "1", "--labels-from-names", str(folder)]) == 0
    cli = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert len(cli) == 4
    lib = [
        reading_to_json(r, label=label_from_name(r.source), with_label=True)
        for r in read_files([folder], load_predictor(threads=1))
    ]
    assert lib == cli
    backend = pytest.importorskip("digitnet.gui.backend")
    import threading

    got = []
    backend.read_files(
        [folder], None, stop=threading.Event(), on_result=lambda res, done, total: got.append(res)
    )
    assert [(g.path, g.text, g.target) for g in got] == [
        (c["path"], c["text"], c["label"]) for c in cli
    ]


def test_real_ctrl_c_with_worker_processes(tmp_path):
    """SIGINT to a real `digitnet predict FOLDER --json` with worker processes: the readings
    made so far come out as whole JSON lines, exit 130, and no worker prints a traceback."""
    import os
    import signal
    import subprocess
    import sys

    # Enough images that the command cannot finish before the signal arrives (an idle machine
    # reads a few hundred a second): one drawing, copied.
    draw(tmp_path / "0000_1.png", "1")
    data = (tmp_path / "0000_1.png").read_bytes()
    for i in range(1, 3000):
        (tmp_path / f"{i:04d}_1.png").write_bytes(data)
    # As from a terminal: Ctrl-C handled by default in the child, whatever this test process
    # (or the shell that started it in the background) set for SIGINT; an ignored SIGINT is
    # inherited across exec, and Python then rightly leaves it ignored.
    p = subprocess.Popen(
        [sys.executable, "-m", "digitnet", "predict", str(tmp_path), "--json", "--jobs", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    fd = p.stdout.fileno()
    got = b""
    while b"\n" not in got:  # raw reads: nothing is left in a Python-side buffer
        chunk = os.read(fd, 65536)
        assert chunk, p.stderr.read().decode()[-2000:]
        got += chunk
    p.send_signal(signal.SIGINT)
    while chunk := os.read(fd, 65536):
        got += chunk
    err = p.stderr.read().decode()
    p.stdout.close()
    p.stderr.close()
    assert p.wait(timeout=60) == 130, err[-2000:]
    rows = [json.loads(ln) for ln in got.decode().splitlines()]
    assert 1 <= len(rows) < 3000 and all(r["text"] == "1" for r in rows)
    assert "interrupted after" in err and "Traceback" not in err and "KeyboardInterrupt" not in err
