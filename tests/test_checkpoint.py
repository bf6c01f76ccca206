"""Checkpoint files, good and hostile: each loads correctly or is refused with one line.

Every file is made here from small models (no committed binaries). Each hostile case is checked
twice: through ``load_checkpoint`` (the exception and its message) and through the command line
(``digitnet evaluate`` and ``digitnet predict --model``), which must print one line naming the file
on stderr, exit with 2 and show no traceback.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import struct

import pytest
import torch
from PIL import Image, ImageDraw

from digitnet.checkpoint import load_checkpoint, read_metadata, save_checkpoint, sidecar_path
from digitnet.cli import main
from digitnet.errors import CheckpointError
from digitnet.models import create_model

STD = {"kind": "standardize", "mean": 0.1307, "std": 0.3081}


def meta_for(model) -> dict:
    return {"model": model.model_name, "model_args": dataclasses.asdict(model.config), "input": STD}


def fresh(name: str = "fast", seed: int = 0):
    torch.manual_seed(seed)
    return create_model(name).eval()


def outputs(model, seed: int = 1) -> torch.Tensor:
    x = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model.eval()(x)


@pytest.fixture
def saved(tmp_path):
    """A valid checkpoint of the small ``fast`` model, and the model it came from."""
    model = fresh()
    path = save_checkpoint(tmp_path / "model.safetensors", model, meta_for(model))
    return path, model


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory):
    """A plain image for ``digitnet predict`` (the checkpoint is what is under test)."""
    img = Image.new("L", (60, 60), 235)
    ImageDraw.Draw(img).line([(15, 12), (45, 12), (25, 50)], fill=20, width=5)
    p = tmp_path_factory.mktemp("img") / "seven.png"
    img.save(p)
    return p


def cli_refuses(capsys, argv: list[str], name: str) -> str:
    """Run the CLI; assert the user-visible contract for a bad input file; return the line."""
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert name in lines[0], lines[0]
    return lines[0]


def refused_everywhere(capsys, path, mnist_dir, png, match: str) -> None:
    """``load_checkpoint``, ``digitnet evaluate`` and ``digitnet predict --model`` all refuse."""
    with pytest.raises(CheckpointError, match=match) as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(str(path))
    line = cli_refuses(
        capsys, ["evaluate", str(path), "--device", "cpu", "--data-dir", str(mnist_dir)], path.name
    )
    assert line.startswith("digitnet evaluate: error: ")
    line = cli_refuses(
        capsys, ["predict", str(png), "--model", str(path), "--jobs", "1"], path.name
    )
    assert line.startswith("digitnet predict: error: ")


# --------------------------------------------------------------------------- good files


def test_round_trip_gives_identical_outputs(saved):
    path, model = saved
    loaded, meta = load_checkpoint(path)
    assert (
        meta["model"] == "fast" and meta["input"] == STD and meta["format"] == "digitnet-checkpoint"
    )
    assert not loaded.training
    assert torch.equal(outputs(loaded), outputs(model))
    side = json.loads(sidecar_path(path).read_text())
    assert side["save_id"] == read_metadata(path)["save_id"]
    assert side["weights_file"] == path.name


def test_plain_state_dict_pt_is_matched_to_its_model(tmp_path):
    # The course report's network saved the ordinary way (torch.save(model.state_dict())).
    model = fresh("course")
    p = tmp_path / "cnn.pth"
    torch.save(model.state_dict(), p)
    loaded, meta = load_checkpoint(p)
    assert meta["model"] == "course" and meta["source"] == "pytorch-state-dict"
    # The course network was trained on raw 0..255 pixels; the loader must remember that.
    assert meta["input"] == {"kind": "raw255"}
    assert torch.equal(outputs(loaded), outputs(model))


def test_renamed_state_dict_is_matched_by_shapes_in_order(tmp_path):
    # Someone else's training script: same layers, other attribute names.
    model = fresh("course")
    renamed = {f"net.layer{i}.param": v for i, v in enumerate(model.state_dict().values())}
    p = tmp_path / "theirs.pt"
    torch.save(renamed, p)
    loaded, meta = load_checkpoint(p)
    assert meta["model"] == "course"
    assert torch.equal(outputs(loaded), outputs(model))


def test_stale_sidecar_after_crash_between_renames_is_ignored(tmp_path):
    # Weights are renamed into place before the sidecar; a crash in between leaves the new
    # weights beside the previous save's sidecar (other save_id, other sha256).
    path = tmp_path / "last.safetensors"
    old, new = fresh(seed=1), fresh(seed=2)
    save_checkpoint(path, old, meta_for(old))
    stale = sidecar_path(path).read_text()
    save_checkpoint(path, new, meta_for(new))
    sidecar_path(path).write_text(stale)
    # The stale sidecar's sha256 no longer matches: only the save_id tells "stale" from "tampered".
    assert json.loads(stale)["sha256"] != hashlib.sha256(path.read_bytes()).hexdigest()
    loaded, meta = load_checkpoint(path)
    assert meta["save_id"] != json.loads(stale)["save_id"]
    assert torch.equal(outputs(loaded), outputs(new))


# --------------------------------------------------------------------------- hostile files


def test_zero_bytes(tmp_path, capsys, mnist_dir, digit_png):
    p = tmp_path / "empty.safetensors"
    p.write_bytes(b"")
    refused_everywhere(capsys, p, mnist_dir, digit_png, r"empty file \(0 bytes\)")


def test_zero_bytes_pt(tmp_path, capsys, mnist_dir, digit_png):
    p = tmp_path / "empty.pt"
    p.write_bytes(b"")
    refused_everywhere(capsys, p, mnist_dir, digit_png, r"empty file \(0 bytes\)")


def test_truncated_in_the_data(saved, capsys, mnist_dir, digit_png):
    path, _ = saved
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    refused_everywhere(capsys, path, mnist_dir, digit_png, "corrupt safetensors file")


def test_truncated_in_the_header(saved, capsys, mnist_dir, digit_png):
    path, _ = saved
    path.write_bytes(path.read_bytes()[:40])
    refused_everywhere(capsys, path, mnist_dir, digit_png, "corrupt safetensors header: it claims")


def test_header_length_larger_than_the_file(tmp_path, capsys, mnist_dir, digit_png):
    # A length field of 2**62 must not make the loader try to read or allocate that much.
    p = tmp_path / "liar.safetensors"
    p.write_bytes(struct.pack("<Q", 1 << 62) + b'{"__metadata__":{}}')
    refused_everywhere(
        capsys, p, mnist_dir, digit_png, f"claims {1 << 62} bytes but the file has 19"
    )


def test_wrong_shapes_for_the_model(tmp_path, capsys, mnist_dir, digit_png):
    # Metadata says "fast", tensors are the larger "digitnet" model's.
    big, small = fresh("digitnet"), fresh("fast")
    p = save_checkpoint(tmp_path / "mixed.safetensors", big, meta_for(small))
    refused_everywhere(capsys, p, mnist_dir, digit_png, "weights do not fit model 'fast'")


def test_same_names_wrong_shape(tmp_path, capsys, mnist_dir, digit_png):
    # Same parameter names, one tensor of another shape: the loader must say which one.
    model = fresh()
    name, first = next(iter(model.state_dict().items()))
    with torch.no_grad():
        dict(model.named_parameters())[name].data = torch.zeros(
            first.shape[0] + 1, *first.shape[1:]
        )
    p = save_checkpoint(tmp_path / "shape.safetensors", model, meta_for(fresh()))
    refused_everywhere(
        capsys, p, mnist_dir, digit_png, rf"{name} has shape \({first.shape[0] + 1},"
    )


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"]
)
def test_non_finite_weights(tmp_path, capsys, mnist_dir, digit_png, value):
    # A diverged run's weights give NaN probabilities for every image; refuse them at load.
    model = fresh()
    with torch.no_grad():
        next(model.parameters()).view(-1)[3] = value
    p = save_checkpoint(tmp_path / "diverged.safetensors", model, meta_for(model))
    refused_everywhere(capsys, p, mnist_dir, digit_png, "contains NaN or infinite values")


class Payload:
    """Unpickling this calls os.mkdir(marker): code execution, made harmless and visible."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_pickle_reduce_payload_is_refused_and_never_runs(tmp_path, capsys, mnist_dir, digit_png):
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.pt"
    torch.save({"conv.weight": torch.zeros(3), "x": Payload(str(marker))}, evil)
    # The test only means something if the payload does run when unpickled without protection.
    control = tmp_path / "control"
    torch.save({"x": Payload(str(control))}, tmp_path / "control.pt")
    torch.load(tmp_path / "control.pt", weights_only=False)
    assert control.exists()

    # The line names what the file tried to import, not torch's advice to turn the protection off.
    refused_everywhere(
        capsys,
        evil,
        mnist_dir,
        digit_png,
        r"refused: the file needs more than plain weights to load \(it may run code\): .*GLOBAL \S*mkdir",
    )
    assert not marker.exists()


def test_sha256_mismatch_means_tampered_weights(saved, capsys, mnist_dir, digit_png):
    path, _ = saved
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # one bit of the last weight: still a valid safetensors file
    path.write_bytes(bytes(data))
    refused_everywhere(capsys, path, mnist_dir, digit_png, "does not match model.json")


def test_missing_checkpoint(tmp_path, capsys, mnist_dir, digit_png):
    refused_everywhere(
        capsys, tmp_path / "nowhere.safetensors", mnist_dir, digit_png, "no such file"
    )


def test_folder_instead_of_checkpoint(tmp_path, capsys, mnist_dir, digit_png):
    d = tmp_path / "dir.safetensors"
    d.mkdir()
    refused_everywhere(capsys, d, mnist_dir, digit_png, "is a folder")


# --------------------------------------------------------------------------- round 2: schema first


def _edit_meta(data: bytes, edit) -> bytes:
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = json.loads(header["__metadata__"]["digitnet"])
    edit(meta)
    header["__metadata__"]["digitnet"] = json.dumps(meta)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data[8 + n :]


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m: m.__setitem__("input", "x"), "metadata 'input' has the wrong type"),
        (lambda m: m["input"].pop("mean"), "'input' mean must be a finite number"),
        (lambda m: m["input"].__setitem__("std", 0), "'input' std must be a number"),
        (lambda m: m.__setitem__("model", 5), "metadata 'model' has the wrong type"),
        (lambda m: m["model_args"].__setitem__("widths", "abc"), "widths must be a list"),
        (lambda m: m["model_args"].__setitem__("widths", [8000, 8000, 1]), "too large"),
        (lambda m: m["model_args"].__setitem__("depths", [10**7, 1, 1]), "outside 1..64"),
        (lambda m: m.__setitem__("save_id", "0" * 32), None),  # with the last byte flipped
    ],
    ids=["input-str", "no-mean", "std-0", "model-int", "args-type", "wide", "deep", "save-id"],
)
def test_metadata_schema_refuses_before_building(saved, edit, match):
    path, _ = saved
    data = bytearray(path.read_bytes())
    if match is None:  # tampered weights and a new save_id to disown the sidecar
        data[-1] ^= 0x01
        match = "tensor data's sha256"
    path.write_bytes(_edit_meta(bytes(data), edit))
    with pytest.raises(CheckpointError, match=match) as info:
        load_checkpoint(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_huge_architecture_is_refused_fast_and_small(saved):
    # Counted on the meta device: no allocation, well under a second, in a fresh process.
    import subprocess
    import sys

    path, _ = saved
    path.write_bytes(
        _edit_meta(
            path.read_bytes(), lambda m: m["model_args"].__setitem__("widths", [8000, 8000, 1])
        )
    )
    code = (
        "import resource, time, sys\n"
        "import torch, safetensors.torch, digitnet.models  # imports are not what is timed\n"
        "from digitnet.checkpoint import load_checkpoint\n"
        "from digitnet.errors import CheckpointError\n"
        "r0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; t0 = time.perf_counter()\n"
        "try:\n    load_checkpoint(sys.argv[1])\nexcept CheckpointError:\n    pass\n"
        "print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - r0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    ).stdout.split()
    seconds, grown_kb = float(out[0]), int(out[1])
    assert seconds < 1.0 and grown_kb < 200 * 1024, (seconds, grown_kb)


def test_pt_files_are_recognised_by_content(tmp_path, saved):
    path, model = saved
    renamed = tmp_path / "renamed.pt"
    renamed.write_bytes(path.read_bytes())  # a safetensors file with a .pt name loads as one
    loaded, meta = load_checkpoint(renamed)
    assert meta["model"] == "fast" and torch.equal(outputs(loaded), outputs(model))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"hello world, not a checkpoint")
    with pytest.raises(CheckpointError, match=r"not a PyTorch checkpoint: neither a torch\.save"):
        load_checkpoint(garbage)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: torch.zeros(4, dtype=torch.float8_e4m3fn), "dtype float8_e4m3fn"),
        (lambda: torch.zeros(4, 4).to_sparse(), "sparse_coo"),
        (lambda: torch.empty(4, device="meta"), "on device 'meta'"),
        (lambda: torch.zeros(4, dtype=torch.complex64), "dtype complex64"),
    ],
    ids=["fp8", "sparse", "meta", "complex"],
)
def test_exotic_tensors_in_pt_are_refused(tmp_path, make, match):
    p = tmp_path / "odd.pt"
    torch.save({"w": make()}, p)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(p)


def test_broken_weight_values_are_refused(tmp_path):
    for name, fix, match in [
        ("negvar", lambda m: m.features[1].running_var.fill_(-1.0), "negative variance"),
        ("huge", lambda m: m.features[0].weight.mul_(1e38), "beyond any trained digit model"),
    ]:
        m = fresh()
        with torch.no_grad():
            fix(m)
        p = save_checkpoint(tmp_path / f"{name}.safetensors", m, meta_for(m))
        with pytest.raises(CheckpointError, match=match):
            load_checkpoint(p)


def test_class_count_mismatch_names_the_file(tmp_path):
    m = create_model("fast", num_classes=5)
    p = save_checkpoint(tmp_path / "five.safetensors", m, meta_for(m))
    with pytest.raises(CheckpointError, match=r"five\.safetensors: model 'fast' has a 5-class"):
        load_checkpoint(p)
