"""digitnet experiment: per-entry runs, hostile experiment files and records, --summarize,
the published results (runs.csv, history.csv, summary.json, tables.md), --plot and --classical."""

from __future__ import annotations

import csv
import json
import os
import statistics
import sys
import threading

import pytest

from digitnet.cli import main
from digitnet.errors import UsageError
from digitnet.experiments import load_experiment_file, make_plan, run_experiment
from digitnet.experiments.runner import load_records, read_record


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _toml(tmp_path, text, name="e.toml"):
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    return f


# ----------------------------------------------------------------------------- plan


def test_per_entry_runs_and_flag_precedence(tmp_path):
    f = _toml(tmp_path, 'runs = 2\nout = "x"\n[models.paper]\nruns = 4\n[models.mlp]\n')
    plan = make_plan(file=load_experiment_file(f))
    runs = {e.label: e.runs for e in plan.entries}
    assert runs == {"paper": 4, "mlp": 2}
    assert plan.total_runs() == 6
    assert plan.seeds(plan.entries[0]) == [0, 1, 2, 3] and plan.seeds(plan.entries[1]) == [0, 1]
    # --runs wins over the file, per-entry values included.
    plan = make_plan(file=load_experiment_file(f), runs=3)
    assert {e.runs for e in plan.entries} == {3}


def test_published_plan_matches_the_full_length_recipes():
    from pathlib import Path

    f = Path(__file__).resolve().parents[1] / "experiments" / "full.toml"
    plan = make_plan(file=load_experiment_file(f), out="x")
    by = {e.label: e for e in plan.entries}
    assert {k: e.runs for k, e in by.items()} == {
        "paper": 10,
        "course": 10,
        "digitnet": 5,
        "lenet5": 5,
        "mlp": 5,
        "resnet": 5,
        "course_relu": 5,
    }
    assert by["paper"].config.epochs == 20 and by["paper"].config.batch_size == 32
    assert by["course"].config.epochs == 50 and by["course"].config.lr == 1e-4
    assert by["course"].config.input == "raw255"
    assert by["course_relu"].config.model_args == {"activation": "relu"}
    assert by["course_relu"].config.recipe == "classic"
    # The default-recipe networks use the classic recipe: every run on all training images.
    for label in ("digitnet", "lenet5", "mlp", "resnet", "course_relu"):
        cfg = by[label].config
        assert cfg.recipe == "classic" and cfg.val_split == 0 and cfg.epochs == 15, label
        assert cfg.augment.allographs == 0.0, label


@pytest.mark.parametrize(
    "text, message",
    [
        ('epochs = "abc"\n[models.mlp]\n', "epochs must be an integer, not 'abc'"),
        ("runs = [1, 2]\n[models.mlp]\n", "runs must be an integer, not [1, 2]"),
        ("runs = true\n[models.mlp]\n", "runs must be an integer, not True"),
        ("[models.mlp]\nruns = 0\n", "models.mlp.runs must be >= 1"),
        ('[models.mlp]\nruns = "5"\n', "models.mlp.runs must be an integer"),
        ('[models.mlp]\nlr = "fast"\n', "models.mlp.lr must be a finite number, not 'fast'"),
        ("[models.mlp]\nlr = nan\n", "models.mlp.lr must be a finite number"),
        ("[models.mlp]\nmodel_args = 3\n", "models.mlp.model_args must be a table"),
        ('[models.mlp]\naugment = "yes"\n', "models.mlp.augment must be true, false or a table"),
        (
            '[models.mlp]\naugment = { rotate = "x" }\n',
            "models.mlp.augment.rotate must be a finite number",
        ),
        ("[models.mlp]\nwhat = 1\n", "models.mlp: unknown setting 'what'"),
        ("tensorboard = 1\n[models.mlp]\n", "tensorboard must be true or false, not 1"),
        ("models = 3\n", "'models' must be a table of tables"),
    ],
)
def test_wrong_types_name_the_file_and_key(tmp_path, text, message):
    f = _toml(tmp_path, text)
    with pytest.raises(UsageError) as exc:
        load_experiment_file(f)
    msg = str(exc.value)
    assert str(f) in msg and message in msg and "\n" not in msg


def test_yaml_wrong_types(tmp_path):
    pytest.importorskip("yaml")
    f = _toml(tmp_path, "runs: [1, 2]\nmodels:\n  mlp: {}\n", "e.yaml")
    with pytest.raises(UsageError, match=r"e\.yaml: runs must be an integer"):
        load_experiment_file(f)
    f = _toml(tmp_path, "models:\n  mlp:\n    epochs: abc\n", "f.yaml")
    with pytest.raises(
        UsageError, match=r"f\.yaml: models\.mlp\.epochs must be an integer, not 'abc'"
    ):
        load_experiment_file(f)


@pytest.mark.parametrize("suffix", [".toml", ".yaml"])
def test_not_utf8(tmp_path, suffix):
    f = tmp_path / f"e{suffix}"
    f.write_bytes(b"runs = 3\n# \xff\xfe caf\xe9\n")
    with pytest.raises(UsageError) as exc:
        load_experiment_file(f)
    assert str(f) in str(exc.value) and "not UTF-8 text" in str(exc.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "e.toml"
    os.mkfifo(fifo)
    done = []

    def read():
        try:
            load_experiment_file(fifo)
        except UsageError as exc:
            done.append(str(exc))

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(5)
    if t.is_alive():  # unblock the reader so the test process can end, then fail
        with open(fifo, "w"):
            pass
        pytest.fail("reading a FIFO experiment file hung")
    assert done and "is a FIFO" in done[0] and str(fifo) in done[0]


def test_folder_and_huge_file(tmp_path):
    (tmp_path / "d.toml").mkdir()
    with pytest.raises(UsageError, match="a folder"):
        load_experiment_file(tmp_path / "d.toml")
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (2 << 20))
    with pytest.raises(UsageError, match="too large"):
        load_experiment_file(big)


def test_cli_bad_experiment_file_is_one_line(tmp_path, capsys):
    f = _toml(tmp_path, 'epochs = "abc"\nout = "x"\n[models.mlp]\n')
    assert main(["experiment", "--config", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        len(err.splitlines()) == 1 and "epochs must be an integer" in err and "Traceback" not in err
    )


# ----------------------------------------------------------------------------- records


@pytest.fixture(scope="module")
def finished(tiny_mnist, tmp_path_factory):
    """An experiment folder with finished runs: mlp x 3 (1 epoch), course x 2 (2 epochs)."""
    out = tmp_path_factory.mktemp("exp")
    f = out / "e.toml"
    f.write_text(
        f'runs = 2\nlimit_train = 400\ndata_dir = "{tiny_mnist}"\nthreads = 1\n'
        '[models.mlp]\nrecipe = "classic"\nruns = 3\nepochs = 1\n[models.course]\nrecipe = "course"\nepochs = 2\n',
        encoding="utf-8",
    )
    plan = make_plan(file=load_experiment_file(f), out=str(out / "exp"))
    records, interrupted = run_experiment(plan)
    assert not interrupted and len(records) == 5
    return plan, f


def test_runs_follow_per_entry_counts(finished):
    plan, _ = finished
    recs = load_records(plan)
    assert sorted((r.label, r.seed) for r in recs) == [
        ("course", 0),
        ("course", 1),
        ("mlp", 0),
        ("mlp", 1),
        ("mlp", 2),
    ]
    # The final model is evaluated on its training images once, next to the record.
    for r in recs:
        fe = json.loads((plan.out / r.run_dir / "final_eval.json").read_text(encoding="utf-8"))
        assert 0 <= fe["train_accuracy"] <= 1 and fe["test_accuracy"] == pytest.approx(
            r.test_accuracy, abs=2e-3
        )


@pytest.mark.parametrize(
    "content, why",
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"label": "mlp"}', "missing"),
        (b"[" * 100000 + b"]" * 100000, "unreadable run record"),
    ],
)
def test_corrupt_record_is_one_line(tmp_path, content, why):
    p = tmp_path / "record.json"
    p.write_bytes(content)
    with pytest.raises(UsageError) as exc:
        read_record(p)
    msg = str(exc.value)
    assert str(p) in msg and why in msg and "\n" not in msg and "delete it" in msg


def test_wrong_typed_record_fields(finished, tmp_path):
    plan, _ = finished
    good = json.loads((plan.out / "runs/mlp/seed-0/record.json").read_text(encoding="utf-8"))
    for key, value, why in [
        ("test_accuracy", "0.9", "test_accuracy is str"),
        ("history", {"a": 1}, "history is dict"),
        ("seed", 1.5, "seed is float"),
        ("test_accuracy", 97.5, "not a fraction"),
        ("history", [{"epoch": "one"}], "history row 0"),
    ]:
        p = tmp_path / "record.json"
        p.write_text(json.dumps({**good, key: value}), encoding="utf-8")
        with pytest.raises(UsageError, match=why):
            read_record(p)


def test_corrupt_record_in_folder_cli_one_line(finished, tmp_path, capsys):
    import shutil

    plan, f = finished
    out = tmp_path / "copy"
    shutil.copytree(plan.out, out)
    (out / "runs/course/seed-1/record.json").write_text('{"label": 3', encoding="utf-8")
    for extra in ([], ["--summarize"]):
        assert (
            main(
                [
                    "experiment",
                    "--config",
                    str(f),
                    "--out",
                    str(out),
                    "--quiet",
                    "--no-figures",
                    *extra,
                ]
            )
            == 2
        )
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert (
            "runs/course/seed-1/record.json: unreadable run record" in err
            and "Traceback" not in err
        )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_record_does_not_hang(tmp_path):
    p = tmp_path / "record.json"
    os.mkfifo(p)
    with pytest.raises(UsageError, match="not a regular file"):
        read_record(p)


# ----------------------------------------------------------------------------- publishing


def test_summarize_trains_nothing_and_publishes(finished, tmp_path, capsys, monkeypatch):
    plan, f = finished
    engine_fit = sys.modules["digitnet.engine.fit"]
    calls = []
    monkeypatch.setattr(engine_fit, "fit", lambda *a, **k: calls.append(1))
    res, figs = tmp_path / "results", tmp_path / "figs"
    argv = [
        "experiment",
        "--config",
        str(f),
        "--out",
        str(plan.out),
        "--summarize",
        "--quiet",
        "--results",
        str(res),
        "--figures-dir",
        str(figs),
        "--machine",
        "test box",
        "--json",
    ]
    assert main(argv) == 0
    assert calls == []
    capsys.readouterr()

    runs = _read_csv(res / "runs.csv")
    assert len(runs) == 5
    summary = json.loads((res / "summary.json").read_text(encoding="utf-8"))
    # The real training images only (the default recipe may add synthetic ones).
    assert summary["trained_on"] == 400 and "test box" in summary["machine"]
    assert {r["train_images"] for r in runs} == {"400"}
    assert {"machine", "trained_on", "rows"} <= set(summary)
    required = {
        "model",
        "recipe",
        "kind",
        "epochs",
        "runs",
        "test_accuracy",
        "train_accuracy",
        "train_seconds_mean",
        "source",
    }
    for row in summary["rows"]:
        assert required <= set(row) and row["kind"] in ("measured", "classical", "reported")
    measured = {r["model"]: r for r in summary["rows"] if r["kind"] == "measured"}
    assert set(measured) == {"mlp", "course"}
    for label, row in measured.items():
        mine = [r for r in runs if r["label"] == label]
        te = [float(r["test_accuracy"]) for r in mine]
        tr = [float(r["train_accuracy"]) for r in mine]
        assert row["runs"] == len(mine) == row["runs_planned"]
        assert set(row["test_accuracy"]) == {"mean", "std", "best", "worst"}
        assert row["test_accuracy"]["mean"] == pytest.approx(statistics.fmean(te))
        assert row["test_accuracy"]["std"] == pytest.approx(statistics.stdev(te))
        assert row["test_accuracy"]["best"] == max(te) and row["test_accuracy"]["worst"] == min(te)
        assert row["train_accuracy"]["mean"] == pytest.approx(statistics.fmean(tr))
        assert row["train_seconds_mean"] == pytest.approx(
            statistics.fmean(float(r["train_seconds"]) for r in mine)
        )
        assert 0 <= row["test_accuracy"]["mean"] <= 1  # fractions, not percent
    reported = {
        r["model"]: r["test_accuracy"]["mean"] for r in summary["rows"] if r["kind"] == "reported"
    }
    assert reported["cascade classifier"] == 0.883 and reported["TensorFlow deep model"] == 0.9832
    assert all(r["source"] for r in summary["rows"])

    hist = _read_csv(res / "history.csv")
    assert len(hist) == 3 * 1 + 2 * 2  # one row per run and epoch
    tables = (res / "tables.md").read_text(encoding="utf-8")
    assert "| Training accuracy |" in tables and "| Test accuracy |" in tables
    assert "(2 of 2 runs, 2 epochs)" in tables

    for name in ("results_figure6.png", "results_curves.png"):
        assert (figs / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # --plot redraws the figures from the results folder alone.
    for name in ("results_figure6.png", "results_curves.png"):
        (figs / name).unlink()
    assert main(["experiment", "--plot", str(res), "--figures-dir", str(figs)]) == 0
    assert (figs / "results_figure6.png").stat().st_size > 10000


def test_summarize_counts_unfinished_runs(finished, tmp_path):
    import shutil

    plan, f = finished
    out = tmp_path / "partial"
    shutil.copytree(plan.out, out)
    shutil.rmtree(out / "runs/mlp/seed-2")
    res = tmp_path / "res"
    assert (
        main(
            [
                "experiment",
                "--config",
                str(f),
                "--out",
                str(out),
                "--summarize",
                "--quiet",
                "--results",
                str(res),
                "--no-figures",
            ]
        )
        == 0
    )
    row = next(
        r
        for r in json.loads((res / "summary.json").read_text(encoding="utf-8"))["rows"]
        if r["model"] == "mlp"
    )
    assert row["runs"] == 2 and row["runs_planned"] == 3 and "2 of 3 runs finished" in row["source"]


def test_summarize_refuses_a_missing_folder(tmp_path, capsys):
    assert (
        main(["experiment", "--models", "mlp", "--out", str(tmp_path / "none"), "--summarize"]) == 2
    )
    assert "no such experiment folder" in capsys.readouterr().err


def test_plot_needs_results(tmp_path, capsys):
    assert main(["experiment", "--plot", str(tmp_path)]) == 2
    assert "summary.json: missing" in capsys.readouterr().err


def test_classical_on_the_same_data(finished, tmp_path):
    pytest.importorskip("sklearn")
    plan, f = finished
    res = tmp_path / "res"
    assert (
        main(
            [
                "experiment",
                "--config",
                str(f),
                "--out",
                str(plan.out),
                "--summarize",
                "--quiet",
                "--results",
                str(res),
                "--classical",
                "--no-figures",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    rows = json.loads((res / "summary.json").read_text(encoding="utf-8"))["rows"]
    classical = {r["model"]: r for r in rows if r["kind"] == "classical"}
    assert set(classical) == {"PCA + SVM (RBF)", "k-nearest neighbours", "logistic regression"}
    for r in classical.values():
        # Synthetic digits are easy: every method must be far above chance, or the data was wrong.
        assert 0.5 < r["test_accuracy"]["mean"] <= 1 and r["train_seconds_mean"] >= 0
        assert "scikit-learn" in r["source"]
    c = json.loads((res / "classical.json").read_text(encoding="utf-8"))["rows"]
    assert {r["train_images"] for r in c} == {400} and {r["test_images"] for r in c} == {500}


def test_record_from_an_older_config_still_counts(finished, tmp_path):
    """A setting added to TrainConfig after a run finished must not orphan that run."""
    import shutil

    plan, f = finished
    out = tmp_path / "old"
    shutil.copytree(plan.out, out)
    p = out / "runs/mlp/seed-0/record.json"
    d = json.loads(p.read_text(encoding="utf-8"))
    d["config"].pop("log_every")  # as if written before log_every existed (its default was used)
    p.write_text(json.dumps(d), encoding="utf-8")
    plan2 = make_plan(file=load_experiment_file(f), out=str(out))
    assert len(load_records(plan2)) == 5


def test_summarize_from_records_alone(finished, tmp_path, capsys):
    """Records copied without checkpoints (as committed in experiments/records/) still summarise."""
    import shutil

    plan, f = finished
    copy = tmp_path / "copy"
    for rec in plan.out.glob("runs/*/*/record.json"):
        dst = copy / rec.parent.relative_to(plan.out)
        dst.mkdir(parents=True)
        for name in ("record.json", "final_eval.json", "config.json"):
            shutil.copy(rec.parent / name, dst / name)
    argv = [
        "experiment",
        "--config",
        str(f),
        "--out",
        str(copy),
        "--summarize",
        "--quiet",
        "--results",
        str(tmp_path / "res"),
        "--no-figures",
    ]
    assert main(argv) == 0
    assert "no confusion matrix" in capsys.readouterr().err
    assert len(_read_csv(tmp_path / "res" / "runs.csv")) == 5
