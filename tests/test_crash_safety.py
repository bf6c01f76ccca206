"""Crash safety: interrupted training resumes bit for bit, kill -9 never corrupts a checkpoint,
and outputs that cannot be written fail with one clear line.

Training here is tiny (the ``fast`` recipe, 1,500 images, 2 epochs, one CPU thread,
``--deterministic``) because what is checked is equality, not accuracy: on CPU with deterministic
algorithms the same seed gives the same bits, so a resumed run must end with exactly the weights
of an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from digitnet.checkpoint import load_checkpoint, save_checkpoint
from digitnet.cli import main
from digitnet.errors import OutputError

# Batch 64 instead of the recipe's 256: 24 steps per epoch, so that epoch 2 lasts long enough for
# a signal sent when the epoch-1 checkpoint appears to land inside it.
ARGS = [
    "--recipe",
    "fast",
    "--limit-train",
    "1500",
    "--epochs",
    "2",
    "--batch-size",
    "64",
    "--deterministic",
    "--device",
    "cpu",
    "--threads",
    "1",
    "--quiet",
]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def weights(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(str(path)).items() if not k.startswith("_train.")}


def assert_bitwise_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"


@pytest.fixture
def torch_globals():
    """fit(deterministic=True, threads=1) sets process-wide torch flags; give them back."""
    det, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    yield
    torch.use_deterministic_algorithms(det)
    torch.set_num_threads(threads)


def train_cmd(tiny_mnist: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "digitnet",
        "train",
        *ARGS,
        "--data-dir",
        str(tiny_mnist),
        "--out",
        str(out),
        *extra,
    ]


@pytest.fixture(scope="module")
def uninterrupted(tiny_mnist, tmp_path_factory) -> dict[str, torch.Tensor]:
    """Final weights of a real, uninterrupted CLI run (the reference for both signals)."""
    out = tmp_path_factory.mktemp("full")
    r = subprocess.run(
        train_cmd(tiny_mnist, out), env=ENV, capture_output=True, text=True, timeout=240
    )
    assert r.returncode == 0, r.stderr
    return weights(out / "model.safetensors")


# --- (a) resume == uninterrupted


def test_mid_epoch_stop_then_resume_is_bitwise_identical(tiny_mnist, tmp_path, torch_globals):
    from digitnet.data.datasets import load_datasets
    from digitnet.engine import fit, resolve_config
    from digitnet.engine.callbacks import Callback

    def config(out: Path):
        return resolve_config(
            recipe="fast",
            epochs=2,
            limit_train=1500,
            deterministic=True,
            device="cpu",
            threads=1,
            data_dir=str(tiny_mnist),
            out=str(out),
        )

    # Read MNIST once and evaluate on 500 test images: evaluation does not touch the weights,
    # and this keeps the three runs below to a few seconds each.
    data = load_datasets(config(tmp_path), torch.device("cpu"))
    data.test.images, data.test.labels = data.test.images[:500], data.test.labels[:500]
    full = fit(config(tmp_path / "full"), datasets=data)
    assert not full.interrupted

    class StopAt(Callback):
        """Sets the stop event inside epoch 1 at step 3 of 6: the optimizer, schedule, RNG,
        permutation and running sums must all be saved mid-epoch for the resume to match."""

        def __init__(self, event: threading.Event) -> None:
            self.event = event

        def on_batch_end(self, state):
            if state.epoch == 0 and state.step == 3:
                self.event.set()

    stop = threading.Event()
    cut = fit(config(tmp_path / "cut"), callbacks=[StopAt(stop)], stop=stop, datasets=data)
    assert cut.interrupted and cut.checkpoint is None
    assert cut.last_checkpoint == tmp_path / "cut" / "last.safetensors"
    assert not (tmp_path / "cut" / "model.safetensors").exists()

    resumed = fit(config(tmp_path / "cut"), resume=cut.last_checkpoint, datasets=data)
    assert not resumed.interrupted
    assert_bitwise_equal(weights(resumed.checkpoint), weights(full.checkpoint))
    # The history is continued, not restarted: same per-epoch test figures.
    assert [r.test_accuracy for r in resumed.history] == [r.test_accuracy for r in full.history]


@pytest.mark.parametrize(
    "sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_real_signal_then_resume_is_bitwise_identical(
    tiny_mnist, tmp_path, uninterrupted, sig, code
):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        train_cmd(tiny_mnist, out),
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not (out / "last.safetensors").exists():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "no epoch-1 checkpoint after 240 s"
            time.sleep(0.005)
        proc.send_signal(sig)
        _stdout, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived (machine too fast for 24 steps)")
    assert proc.returncode == code, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith(f"digitnet train: interrupted by {sig.name} at epoch ")
    assert lines[0].endswith(f"resume with: digitnet train --resume {out / 'last.safetensors'}")
    assert not (out / "model.safetensors").exists()
    if sig == signal.SIGTERM:
        # Saving and resuming are the same code for both signals; one resumed run (SIGINT) is
        # enough on a shared 2-core machine. Here: the state on disk is a resumable mid-run one.
        from digitnet.checkpoint import load_training_state

        _, state, meta = load_training_state(out / "last.safetensors")
        assert meta["train_state"]["epoch"] == 1 and "perm" in state
        return

    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "digitnet",
            "train",
            "--resume",
            str(out / "last.safetensors"),
            "--device",
            "cpu",
            "--threads",
            "1",
            "--quiet",
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert r.returncode == 0, r.stderr
    assert_bitwise_equal(weights(out / "model.safetensors"), uninterrupted)


# --- (b) kill -9 during save

SAVER = textwrap.dedent("""
    import sys, torch
    from digitnet.checkpoint import save_checkpoint
    from digitnet.models import create_model
    import dataclasses
    path = sys.argv[1]
    model = create_model("mlp")  # 535k parameters, a 2 MB file: a write takes long enough to be hit
    meta = {"model": "mlp", "model_args": dataclasses.asdict(model.config),
            "input": {"kind": "standardize", "mean": 0.1307, "std": 0.3081}}
    i = 0
    while True:
        i += 1
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(float(i))  # version i is recognisable from any one weight
        print("saving", i, flush=True)
        save_checkpoint(path, model, meta)
        print("saved", i, flush=True)
""")


def test_kill_9_during_save_leaves_a_loadable_checkpoint(tmp_path):
    path = tmp_path / "last.safetensors"
    rng = random.Random(1234)
    for _ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-c", SAVER, str(path)], env=ENV, stdout=subprocess.PIPE, text=True
        )
        try:
            assert proc.stdout is not None
            log = [proc.stdout.readline(), proc.stdout.readline()]
            assert log == ["saving 1\n", "saved 1\n"], log
            time.sleep(rng.uniform(0.0, 0.3))  # a random moment: before, during or after a write
            proc.kill()
            log += proc.communicate(timeout=30)[0].splitlines()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        saved = [int(s.split()[1]) for s in log if s.startswith("saved")]
        started = [int(s.split()[1]) for s in log if s.startswith("saving")]
        # Must not raise: never half a file, and a sidecar left stale by the kill is ignored.
        model, _ = load_checkpoint(path)
        version = float(next(model.parameters()).detach().view(-1)[0])
        # The last completed save, or the one in progress (its rename may have happened before
        # "saved" was printed).
        assert version in (saved[-1], started[-1]), (version, saved[-3:], started[-3:])
        assert all(bool((p == version).all()) for p in model.parameters())
        # A kill mid-write may leave a hidden temporary file beside it; never under the real name.
        assert all(
            p.name.startswith(".last.") for p in tmp_path.iterdir() if p.name.endswith(".tmp")
        )


# --- (c) outputs that cannot be written


def one_line_error(capsys, argv: list[str]) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return code, lines[0]


def test_out_under_a_regular_file(tmp_path, capsys, tiny_mnist):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    code, line = one_line_error(
        capsys, ["train", *ARGS, "--data-dir", str(tiny_mnist), "--out", str(blocker / "run")]
    )
    assert code == 1
    assert line == f"digitnet train: error: {blocker / 'run'}: cannot write: Not a directory"


def test_out_is_a_regular_file(tmp_path, capsys, tiny_mnist):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    code, line = one_line_error(
        capsys, ["train", *ARGS, "--data-dir", str(tiny_mnist), "--out", str(blocker)]
    )
    assert code == 1
    assert (
        line
        == f"digitnet train: error: {blocker}: cannot create folder: a file of that name exists"
    )


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can write to read-only folders"
)
def test_out_in_a_read_only_folder(tmp_path, capsys, tiny_mnist):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, line = one_line_error(
            capsys, ["train", *ARGS, "--data-dir", str(tiny_mnist), "--out", str(ro / "run")]
        )
    finally:
        ro.chmod(0o755)
    assert code == 1
    assert line == f"digitnet train: error: {ro / 'run'}: cannot write: permission denied"


class _FullDisk:
    """A file object whose writes store half the bytes and then fail as a full disk does."""

    def __init__(self, fh) -> None:
        self._fh = fh

    def write(self, data):
        self._fh.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch, where):
    from digitnet.models import create_model

    torch.manual_seed(0)
    old = create_model("fast")
    meta = {
        "model": "fast",
        "model_args": dataclasses.asdict(old.config),
        "input": {"kind": "raw255"},
    }
    path = save_checkpoint(tmp_path / "model.safetensors", old, meta)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    if where == "write":
        real = os.fdopen
        monkeypatch.setattr(os, "fdopen", lambda *a, **k: _FullDisk(real(*a, **k)))
    else:  # delayed allocation: the write is buffered and the error comes at fsync

        def fsync(fd):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, "fsync", fsync)
    new = create_model("fast")
    with pytest.raises(OutputError) as info:
        save_checkpoint(path, new, meta)
    monkeypatch.undo()
    assert str(info.value) == f"{path}: cannot write: no space left on device"
    # Previous files byte for byte, and no temporary file left behind.
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    loaded, _ = load_checkpoint(path)
    assert all(
        torch.equal(a, b)
        for a, b in zip(loaded.state_dict().values(), old.state_dict().values(), strict=True)
    )
