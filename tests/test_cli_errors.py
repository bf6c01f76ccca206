"""Command-line mistakes: a missing path or a bad flag value gives one line naming it, no traceback.

``main(argv)`` is called in-process (the CLI's contract is ``main(argv) -> int``). Errors the
commands raise print exactly one line, ``digitnet <cmd>: error: <input>: <problem>``, and exit 2.
Flags argparse itself rejects (not an int, not one of the choices) print argparse's usage first
and then one error line naming the flag; that last line is what is checked for those.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from digitnet.cli import main

FAST = ["--recipe", "fast", "--limit-train", "10", "--epochs", "1", "--device", "cpu", "--quiet"]


def run(capsys, argv: list[str]) -> tuple[int, list[str]]:
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err.strip().splitlines()


# --------------------------------------------------------------------------- missing paths


@pytest.mark.parametrize(
    "make_argv, expected",
    [
        (
            lambda t, d: [
                "train",
                *FAST,
                "--data-dir",
                str(t / "no-data"),
                "--out",
                str(t / "run"),
            ],
            "{t}/no-data: MNIST folder does not exist",
        ),
        (
            lambda t, d: [
                "train",
                "--resume",
                str(t / "run" / "last.safetensors"),
                "--device",
                "cpu",
                "--quiet",
            ],
            "{t}/run/last.safetensors: no such file",
        ),
        (
            lambda t, d: [
                "train",
                *FAST,
                "--config",
                str(t / "settings.toml"),
                "--data-dir",
                str(d),
            ],
            "{t}/settings.toml: no such file",
        ),
        (
            lambda t, d: [
                "evaluate",
                str(t / "model.safetensors"),
                "--device",
                "cpu",
                "--data-dir",
                str(d),
            ],
            "{t}/model.safetensors: no such file",
        ),
        (
            lambda t, d: [
                "evaluate",
                "--device",
                "cpu",
                "--data-dir",
                str(t / "no-data"),
                str(d.parent / "no.pt"),
            ],
            "{dp}/no.pt: no such file",
        ),
        (
            lambda t, d: [
                "predict",
                "--model",
                str(t / "model.pt"),
                "--jobs",
                "1",
                str(t / "digit.png"),
            ],
            "{t}/model.pt: no such file",
        ),
    ],
    ids=[
        "train-data-dir",
        "train-resume",
        "train-config",
        "evaluate-checkpoint",
        "evaluate-pt",
        "predict-model",
    ],
)
def test_missing_path(tmp_path, capsys, mnist_dir, make_argv, expected):
    Image.new("L", (40, 40), 255).save(
        tmp_path / "digit.png"
    )  # predict needs a real image to reach --model
    argv = make_argv(tmp_path, mnist_dir)
    code, lines = run(capsys, argv)
    assert code == 2
    assert len(lines) == 1, lines
    cmd = argv[0]
    want = expected.format(t=tmp_path, d=mnist_dir, dp=mnist_dir.parent)
    assert lines[0].startswith(f"digitnet {cmd}: error: {want}"), lines[0]
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_evaluate_missing_data_dir_names_the_folder(tmp_path, capsys):
    # The bundled model loads; the data folder is what is missing.
    code, lines = run(
        capsys,
        [
            "evaluate",
            "--device",
            "cpu",
            "--data-dir",
            str(tmp_path / "no-data"),
            str(Path(__import__("digitnet").__file__).parent / "weights" / "digitnet.safetensors"),
        ],
    )
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith(
        f"digitnet evaluate: error: {tmp_path / 'no-data'}: MNIST folder does not exist"
    )


def test_predict_missing_image(tmp_path, capsys):
    # predict reads many images and reports each failure beside the others' results, so a
    # missing image is a per-file failure (exit 1), not a usage error.
    missing = tmp_path / "nowhere.png"
    code, lines = run(capsys, ["predict", "--jobs", "1", str(missing)])
    assert code == 1
    assert lines == [f"digitnet predict: {missing}: no such file or folder"]


@pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="POSIX symlinks")
def test_predict_names_broken_and_looping_links(tmp_path, capsys):
    # Given or met in a folder, a dangling link names its target and a loop says so, instead
    # of "no such file" for a name that `ls` shows.
    (tmp_path / "dangling.png").symlink_to(tmp_path / "gone.png")
    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    code, lines = run(capsys, ["predict", "--jobs", "1", str(tmp_path / "dangling.png")])
    assert code == 1
    assert lines == [
        f"digitnet predict: {tmp_path / 'dangling.png'}: broken symbolic link "
        f"(its target {tmp_path / 'gone.png'} does not exist)"
    ]
    code, lines = run(capsys, ["predict", "--jobs", "1", str(tmp_path)])
    assert code == 1
    assert sorted(lines) == [
        f"digitnet predict: {tmp_path / 'a.png'}: symbolic link loop (the link leads back to itself)",
        f"digitnet predict: {tmp_path / 'b.png'}: symbolic link loop (the link leads back to itself)",
        f"digitnet predict: {tmp_path / 'dangling.png'}: broken symbolic link "
        f"(its target {tmp_path / 'gone.png'} does not exist)",
    ]


# --------------------------------------------------------------------------- bad flag values


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--epochs", "-1"], "--epochs must be >= 1, not -1"),
        (["--epochs", "0"], "--epochs must be >= 1, not 0"),
        (["--batch-size", "0"], "--batch-size must be >= 1, not 0"),
        (["--lr", "-0.1"], "--lr must be > 0, not -0.1"),
        (["--limit-train", "-5"], "--limit-train must be >= 1, not -5"),
        (["--target-accuracy", "150"], "--target-accuracy must be in (0, 1], not 1.5"),
        (["--model", "nosuch"], "unknown model 'nosuch'; choose from: "),
        (["--recipe", "nosuch"], "unknown recipe 'nosuch'; choose from: "),
        (["--device", "tpu"], "unknown device 'tpu'; choose from: "),
    ],
    ids=lambda v: v if isinstance(v, str) else " ".join(v),
)
def test_bad_train_value(tmp_path, capsys, flags, message):
    # Checked before any data is read or any folder is made.
    code, lines = run(
        capsys,
        [
            "train",
            *FAST,
            *flags,
            "--data-dir",
            str(tmp_path / "unused"),
            "--out",
            str(tmp_path / "run"),
        ],
    )
    assert code == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"digitnet train: error: {message}"), lines[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["train", "--epochs", "abc"],
            "digitnet train: error: argument --epochs: invalid int value: 'abc'",
        ),
        (
            ["train", "--optimizer", "bogus"],
            "digitnet train: error: argument --optimizer: invalid choice: 'bogus'",
        ),
        (
            ["evaluate", "m.safetensors", "--split", "val"],
            "digitnet evaluate: error: argument --split: invalid choice: 'val'",
        ),
        (
            ["predict", "--top-k", "0", "x.png"],
            "digitnet predict: error: argument --top-k: must be between 1 and 10, got 0",
        ),
        (["nosuch"], "digitnet: error: argument COMMAND: invalid choice: 'nosuch'"),
    ],
    ids=["epochs-abc", "optimizer", "split", "top-k", "command"],
)
def test_flag_rejected_by_argparse(capsys, argv, message):
    code, lines = run(capsys, argv)
    assert code == 2
    # One line, not argparse's usage block: the full usage is one --help away.
    assert len(lines) == 1, lines
    assert lines[0].startswith(message), lines[0]
    assert lines[0].endswith("--help')")


def test_evaluate_report_into_a_bad_folder_prints_the_metrics_first(tmp_path, capsys, mnist_dir):
    # The evaluation is the expensive part: its results are printed, then the folder's error.
    import dataclasses

    from digitnet.checkpoint import save_checkpoint
    from digitnet.models import create_model

    model = create_model("fast")
    meta = {
        "model": "fast",
        "model_args": dataclasses.asdict(model.config),
        "input": {"kind": "standardize", "mean": 0.1307, "std": 0.3081},
    }
    ckpt = save_checkpoint(tmp_path / "m.safetensors", model, meta)
    (tmp_path / "afile").write_text("x")
    code = main(
        [
            "evaluate",
            str(ckpt),
            "--device",
            "cpu",
            "--data-dir",
            str(mnist_dir),
            "--report",
            str(tmp_path / "afile" / "rep"),
        ]
    )
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert code == 1
    assert "accuracy" in captured.out and "confusion matrix" in captured.out
    assert len(err) == 1 and "afile/rep: cannot write" in err[0], err
