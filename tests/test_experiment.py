"""digitnet experiment: artefacts, statistics recomputed from runs.csv, skipping and resuming
runs."""

from __future__ import annotations

import csv
import json
import statistics
import sys
import threading

import pytest

from digitnet.cli import main
from digitnet.engine.callbacks import Callback
from digitnet.errors import UsageError
from digitnet.experiments import load_experiment_file, make_plan, run_experiment

pytest.importorskip("matplotlib")


def _args(mnist_dir, out, *extra):
    return [
        "experiment",
        "--models",
        "mlp,course",
        "--runs",
        "2",
        "--epochs",
        "1",
        "--limit-train",
        "300",
        "--data-dir",
        str(mnist_dir),
        "--out",
        str(out),
        "--threads",
        "1",
        "--quiet",
        *extra,
    ]


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_experiment_writes_everything_and_skips_finished_runs(
    mnist_dir, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "exp"
    assert main(_args(mnist_dir, out, "--json")) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    for name in [
        "runs.csv",
        "summary.csv",
        "summary.md",
        "summary.json",
        "experiment.json",
        "figures/accuracy.png",
        "figures/curves.png",
        "figures/confusion_best.png",
    ]:
        p = out / name
        assert p.is_file() and p.stat().st_size > 0, name
    for name in ["accuracy.png", "curves.png", "confusion_best.png"]:
        assert (out / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    runs = _read_csv(out / "runs.csv")
    assert sorted((r["model"], int(r["seed"])) for r in runs) == [
        ("course", 0),
        ("course", 1),
        ("mlp", 0),
        ("mlp", 1),
    ]
    # The course recipe trains on all 300; the default recipe holds out a tenth (its
    # calibration split) when the training set is small.
    assert {r["train_images"] for r in runs if r["model"] == "course"} == {"300"}
    assert {r["train_images"] for r in runs if r["model"] == "mlp"} == {"270"}
    assert {r["recipe"] for r in runs if r["model"] == "course"} == {
        "course"
    }  # its own recipe (raw 0..255 input)
    assert {r["recipe"] for r in runs if r["model"] == "mlp"} == {"default"}

    # Recompute every summary number from runs.csv.
    rows = {r["model"]: r for r in _read_csv(out / "summary.csv")}
    assert set(rows) == {"mlp", "course"}
    for model, row in rows.items():
        mine = [r for r in runs if r["model"] == model]
        te = [float(r["test_accuracy"]) for r in mine]
        tr = [float(r["train_accuracy"]) for r in mine]
        assert int(row["n"]) == 2
        assert float(row["test_accuracy_mean"]) == pytest.approx(statistics.fmean(te))
        assert float(row["test_accuracy_std"]) == pytest.approx(statistics.stdev(te))  # sample std
        assert float(row["test_accuracy_best"]) == max(te)
        assert float(row["test_accuracy_worst"]) == min(te)
        assert float(row["train_accuracy_mean"]) == pytest.approx(statistics.fmean(tr))
        assert float(row["train_accuracy_std"]) == pytest.approx(statistics.stdev(tr))
        assert float(row["seconds_mean"]) == pytest.approx(
            statistics.fmean(float(r["seconds"]) for r in mine)
        )
        assert int(row["parameters"]) == int(mine[0]["parameters"]) > 0
        js = next(m for m in summary["models"] if m["model"] == model)
        assert js["test_accuracy_mean"] == pytest.approx(statistics.fmean(te))

    # The confusion matrix comes from re-evaluating the best run's checkpoint: it must agree
    # with that run's recorded test accuracy and cover the whole test set.
    best = max(runs, key=lambda r: float(r["test_accuracy"]))
    b = summary["best_run"]
    assert b["test_accuracy"] == pytest.approx(float(best["test_accuracy"]))
    assert sum(map(sum, b["confusion"])) == 10000
    assert sum(b["confusion"][i][i] for i in range(10)) / 10000 == pytest.approx(
        float(best["test_accuracy"]), abs=1e-4
    )
    # Both training-set sizes are named (mlp's default recipe held out its calibration split).
    assert "trained on 270, 300 images" in (out / "summary.md").read_text(encoding="utf-8")

    # Rerunning the same command trains nothing and leaves the stored runs untouched.
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*/*.safetensors")}
    assert sum(p.name == "model.safetensors" for p in stamps) == 4  # one final model per run
    engine_fit = sys.modules[
        "digitnet.engine.fit"
    ]  # the module; digitnet.engine.fit is the function
    calls = []
    real_fit = engine_fit.fit
    monkeypatch.setattr(engine_fit, "fit", lambda *a, **k: calls.append(1) or real_fit(*a, **k))
    assert main(_args(mnist_dir, out)) == 0
    assert calls == []
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert _read_csv(out / "runs.csv") == runs

    # Other settings in the same folder are refused, not silently mixed.
    capsys.readouterr()
    assert main([*_args(mnist_dir, out)[:6], "2", *_args(mnist_dir, out)[7:]]) == 2
    assert "was started with other settings (epochs" in capsys.readouterr().err


class _StopAfter(Callback):
    def __init__(self, n: int, event: threading.Event) -> None:
        self.n, self.event, self.seen = n, event, 0

    def on_batch_end(self, state):
        self.seen += 1
        if self.seen == self.n:
            self.event.set()


def test_interrupted_run_is_continued(mnist_dir, tmp_path):
    def plan(out):
        return make_plan(
            models=["mlp"],
            runs=1,
            epochs=2,
            limit_train=300,
            data_dir=str(mnist_dir),
            out=str(out),
            threads=1,
        )

    p = plan(tmp_path / "a")
    stop = threading.Event()
    # mlp, default recipe: batch 128 on 300 images = 3 steps per epoch; stop at step 1 of epoch 2.
    records, interrupted = run_experiment(p, run_callbacks=lambda: [_StopAfter(4, stop)], stop=stop)
    assert interrupted and records == []
    assert (tmp_path / "a/runs/mlp/seed-0/last.safetensors").exists()

    records, interrupted = run_experiment(p)
    assert not interrupted and len(records) == 1
    r = records[0]
    assert r.resumed_from_step == 4  # continued where it stopped, not started again
    assert r.epochs == 2 and len(r.history) == 2

    # Continuing gives the run it would have been without the interruption.
    (ref,), _ = run_experiment(plan(tmp_path / "b"))
    assert ref.resumed_from_step == 0
    assert r.history[0]["train_loss"] == pytest.approx(ref.history[0]["train_loss"], rel=1e-5)
    assert r.test_accuracy == pytest.approx(ref.test_accuracy, abs=2e-4)


def test_experiment_file_models_recipes_and_overrides(tmp_path):
    f = tmp_path / "e.toml"
    f.write_text(
        'runs = 4\nepochs = 3\nout = "x"\n[models.course]\nrecipe = "course"\n'
        '[models.course_sane]\nmodel = "course"\nrecipe = "default"\n'
        'model_args = { activation = "relu" }\n'
        "[models.paper]\nlr = 0.002\n",
        encoding="utf-8",
    )
    plan = make_plan(file=load_experiment_file(f), epochs=2)
    byl = {e.label: e.config for e in plan.entries}
    assert list(byl) == ["course", "course_sane", "paper"]
    assert plan.runs == 4 and plan.seeds() == [0, 1, 2, 3]
    assert all(c.epochs == 2 for c in byl.values())  # the flag wins over the file
    assert (
        byl["course"].input == "raw255"
        and byl["course"].lr == 1e-4
        and byl["course"].model_args == {}
    )
    assert byl["course_sane"].model == "course" and byl["course_sane"].recipe == "default"
    assert (
        byl["course_sane"].model_args == {"activation": "relu"}
        and byl["course_sane"].input == "standardize"
    )
    assert byl["paper"].recipe == "paper" and byl["paper"].lr == 0.002


@pytest.mark.parametrize(
    "text, message",
    [
        ("runz = 3\n[models.mlp]\n", "unknown top-level setting(s): runz"),
        ('out = "x"\n[models.nonet]\n', "model 'nonet': unknown model"),
        ('out = "x"\n[models.mlp]\nlr = -1\n', "model 'mlp': --lr must be"),
        (
            'out = "x"\n[models.course]\nmodel_args = { activation = "tanh" }\n',
            "activation must be 'none' or 'relu'",
        ),
        ('out = "x"\n', "no models to compare"),
        ("[models.mlp]\n", "an output folder is needed"),
        ('out = "x"\n[models\n', "not a valid TOML file"),
    ],
)
def test_bad_experiment_files_give_one_line_errors(tmp_path, text, message):
    f = tmp_path / "e.toml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError) as exc:
        make_plan(file=load_experiment_file(f))
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_missing_matplotlib_is_a_clear_error(monkeypatch):
    from digitnet.experiments.figures import require_matplotlib

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(UsageError, match=r"need matplotlib.*pip install matplotlib"):
        require_matplotlib()


def test_tensorboard_event_files_per_run(mnist_dir, tmp_path):
    pytest.importorskip("tensorboard")
    out = tmp_path / "tb"
    args = [
        "experiment",
        "--models",
        "mlp",
        "--runs",
        "2",
        "--epochs",
        "1",
        "--limit-train",
        "300",
        "--data-dir",
        str(mnist_dir),
        "--out",
        str(out),
        "--threads",
        "1",
        "--quiet",
        "--no-figures",
        "--tensorboard",
    ]
    assert main(args) == 0
    for seed in (0, 1):
        assert list((out / f"runs/mlp/seed-{seed}/tensorboard").glob("events.out.tfevents.*"))
    assert not (out / "figures").exists()  # --no-figures: tables only
