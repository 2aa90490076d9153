"""The ``skcxr`` command as a user runs it: results, output files, one-line errors, Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import time
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import skcxr
from skcxr import cli, evaluation
from skcxr.cli import _run, main
from skcxr.persistence import load_model, read_description
from conftest import phantom_folder

TABLE_COLUMNS = ["Macro-AUC", "AUC low", "AUC high", "ΔAUC", "ΔAUC low", "ΔAUC high", "Micro-F1", "Macro-F1",
                 "Hamming loss", "Micro-F1 (tuned)", "Macro-F1 (tuned)", "Hamming loss (tuned)", "Seconds",
                 "Thresholds"]


def _strict_json(path):
    def refuse(constant):
        raise ValueError(f"{path} holds {constant}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("skcxr: error: ") and "Traceback" not in err
    return lines[0]


# --- whole runs ----------------------------------------------------------------------------


def test_demo_reports_tuned_thresholds_intervals_and_writes_files(capsys, tmp_path):
    out = tmp_path / "out"
    assert main(["demo", "--n-images", "60", "--size", "32", "--n-boot", "200", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Macro-AUC [CI]" in printed and "ΔAUC [CI]" in printed and "Macro-F1 (tuned)" in printed
    assert printed.rstrip().endswith(cli.DEMO_READING)  # says plainly what the hybrid does on phantoms
    table = pd.read_csv(out / "results.csv", index_col=0)
    assert list(table.columns) == TABLE_COLUMNS
    assert list(table.index) == [cli.BASELINE, cli.HYBRID, cli.HYBRID_MLP]
    assert table.loc[cli.BASELINE, "Thresholds"] == "3-fold CV"
    assert table.loc[cli.HYBRID, "Thresholds"] == "3-fold CV"
    assert table.loc[cli.HYBRID_MLP, "Thresholds"] == "model"  # the MLP's own, from its inner split
    assert (table["AUC low"] <= table["Macro-AUC"]).all() and (table["Macro-AUC"] <= table["AUC high"]).all()
    payload = _strict_json(out / "results.json")
    results = payload["results"]
    assert set(results) == {cli.BASELINE, cli.HYBRID, cli.HYBRID_MLP}
    assert results[cli.BASELINE]["ΔAUC"] is None  # NaN in the table, null in JSON
    assert all(0 <= r["Macro-AUC"] <= 1 and len(r["thresholds"]) == 7 for r in results.values())
    for name in results:
        per_class = pd.read_csv(out / results[name]["per_class_file"], index_col=0)
        assert {"AUC", "F1", "F1 (tuned)", "threshold (tuned)"} <= set(per_class.columns)
    assert sorted(p.name for p in out.glob("per_class_*.csv")) == [
        "per_class_hybrid-lbp-hog-efficientnet-lite0.csv", "per_class_hybrid-mlp-lbp-hog-efficientnet-lite0.csv",
        "per_class_logistic-regression-lbp-hog.csv"]
    assert not list(out.glob(".skcxr-write-test-*"))


def test_run_on_two_folders_scores_each_source(tmp_path, capsys):
    a = phantom_folder(tmp_path / "site-a", n=40, seed=1, first_patient=1)
    b = phantom_folder(tmp_path / "site-b", n=40, seed=2, first_patient=1000)
    out = tmp_path / "out"
    assert main(["run", "--data", str(a), str(b), "--size", "16", "--n-boot", "100", "--n-jobs", "1",
                 "--threshold-cv", "0", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "patient-wise split" in printed and "Within source 'site-a'" in printed
    by_source = pd.read_csv(out / "results_by_source.csv", index_col=[0, 1])
    assert set(by_source.index.get_level_values("Source")) == {"site-a", "site-b"}
    payload = _strict_json(out / "results.json")
    assert payload["data"]["sources"] == {"site-a": 40, "site-b": 40}
    assert set(payload["by_source"]) == {"site-a", "site-b"}
    assert payload["results"][cli.BASELINE]["Thresholds"] == "none"  # --threshold-cv 0


def test_run_on_a_chestxray14_folder(nih_root, tmp_path, capsys):
    frame = pd.read_csv(nih_root / "Data_Entry_2017.csv").iloc[:48]
    (tmp_path / "images").mkdir()
    for name in frame["Image Index"]:
        os.symlink(nih_root / "images" / name, tmp_path / "images" / name)
    frame.to_csv(tmp_path / "Data_Entry_2017.csv", index=False)
    out = tmp_path / "out"
    assert main(["run", "--data", str(tmp_path), "--size", "32", "--n-boot", "100", "--out", str(out)]) == 0
    assert "patient-wise split" in capsys.readouterr().out
    table = pd.read_csv(out / "results.csv", index_col=0)
    assert list(table.columns) == TABLE_COLUMNS
    _strict_json(out / "results.json")


# --- arguments are checked before any work ----------------------------------------------------


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if anything heavy starts."""
    def refuse(*args, **kwargs):
        raise AssertionError("heavy work started before the arguments were checked")

    monkeypatch.setattr("skcxr.datasets.make_phantoms", refuse)
    monkeypatch.setattr("skcxr.datasets.load_chestxray14", refuse)
    monkeypatch.setattr(evaluation, "holdout_report", refuse)


@pytest.mark.parametrize(
    "argv, named",
    [
        (["demo", "--size", "8"], "--size"),
        (["demo", "--size", "big"], "--size"),
        (["demo", "--test-size", "1"], "--test-size"),
        (["demo", "--test-size", "0"], "--test-size"),
        (["demo", "--n-jobs", "0"], "--n-jobs"),
        (["demo", "--n-images", "5"], "--n-images"),
        (["demo", "--n-boot", "0"], "--n-boot"),
        (["demo", "--threshold-cv", "1"], "--threshold-cv"),
        (["run"], "--data"),
        (["run", "--data", "{tmp}/nowhere"], "nowhere"),
        (["run", "--data", "{tmp}/empty"], "no label file"),
        (["run", "--data", "{tmp}/file.txt"], "not a folder"),
        (["demo", "--out", "{tmp}/file.txt/results"], "--out"),
        (["frobnicate"], "frobnicate"),
    ],
)
def test_bad_arguments_are_one_line_before_any_work(argv, named, tmp_path, capsys, no_work):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("x")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 1
    assert named in _one_error_line(capsys.readouterr().err)


def test_unwritable_out_is_refused_before_loading(tmp_path, capsys, no_work, monkeypatch):
    data = phantom_folder(tmp_path / "data", n=40)
    out = tmp_path / "out"
    real_mkdir = type(out).mkdir

    def deny(self, *args, **kwargs):
        if self == out:
            raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(type(out), "mkdir", deny)
    assert main(["run", "--data", str(data), "--out", str(out)]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "--out" in line and "Permission denied" in line


def test_wrong_path_is_one_line_of_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "skcxr.cli", "run", "--data", str(tmp_path / "nowhere")],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "nowhere" in _one_error_line(proc.stderr)


def test_help_names_the_commands():
    proc = subprocess.run([sys.executable, "-m", "skcxr.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "demo" in proc.stdout and "run" in proc.stdout


# --- errors during the work --------------------------------------------------------------------


@pytest.mark.parametrize(
    "error, named",
    [
        (FileNotFoundError("Image file not found: '/data/images/x.png'."), "x.png"),
        (PermissionError(13, "Permission denied", "/data/images/locked.png"), "locked.png"),
        (OSError(28, "No space left on device", "/out/results.csv"), "results.csv"),
        (ValueError("Cannot read '/data/images/bad.png': corrupt or truncated image."), "bad.png"),
        (IsADirectoryError("Expected an image file, got the directory '/data/images/sub'."), "sub"),
    ],
)
def test_errors_during_the_run_are_one_line(error, named, tmp_path, capsys, monkeypatch):
    data = phantom_folder(tmp_path / "data", n=40)

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(evaluation, "holdout_report", fail)
    assert main(["run", "--data", str(data)]) == 1
    assert named in _one_error_line(capsys.readouterr().err)


def test_decompression_bomb_names_the_image(tmp_path, capsys, monkeypatch):
    data = phantom_folder(tmp_path / "data", n=40)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # every 32x32 phantom is now "too large"
    assert main(["run", "--data", str(data), "--size", "16", "--n-jobs", "1", "--quiet"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "decompression bomb" in line and ".png" in line and str(data) in line


def test_missing_images_are_a_one_line_warning(tmp_path, capsys, monkeypatch):
    data = phantom_folder(tmp_path / "data", n=42)
    (data / "images" / sorted(os.listdir(data / "images"))[0]).unlink()
    monkeypatch.setattr(evaluation, "holdout_report", lambda *a, **k: (_ for _ in ()).throw(ValueError("stop")))
    assert main(["run", "--data", str(data)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("skcxr: warning: Dropped 1 of 42 rows") and err[1] == "skcxr: error: stop"


def test_keyboard_interrupt_is_one_line_and_status_130(tmp_path, capsys, monkeypatch):
    data = phantom_folder(tmp_path / "data", n=40)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluation, "holdout_report", interrupt)
    assert main(["run", "--data", str(data)]) == 130
    assert capsys.readouterr().err == "skcxr: interrupted\n"


def test_ctrl_c_on_the_command(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "skcxr.cli", "demo", "--n-images", "200", "--size", "64", "--n-jobs", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as from a terminal (see ctrl_c_works)
    try:
        assert proc.stdout.readline().startswith("Phantoms:")  # training starts now
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1] == "skcxr: interrupted" and "Traceback" not in err


def test_slugs_are_file_names_and_unique():
    slugs = cli._slugs(["Logistic regression (LBP+HOG)", "logistic regression: LBP/HOG", "Ünïcode!"])
    assert slugs["Logistic regression (LBP+HOG)"] == "logistic-regression-lbp-hog"
    assert slugs["logistic regression: LBP/HOG"] == "logistic-regression-lbp-hog-2"
    assert all(s and "/" not in s for s in slugs.values())
    assert np.all([s == s.lower() for s in slugs.values()])


def test_explain_trains_on_a_folder_first_and_names_the_finding_and_the_truth(tmp_path, capsys, monkeypatch):
    import skcxr.plotting

    drawn, real = [], skcxr.plotting.attention_panel

    def record(*args, title=None, labels=None, **kwargs):
        drawn.append((title, labels))
        return real(*args, title=title, labels=labels, **kwargs)

    monkeypatch.setattr(skcxr.plotting, "attention_panel", record)
    root = phantom_folder(tmp_path / "data", n=40, size=32)
    image = next((root / "images").iterdir())
    out = tmp_path / "pictures"
    assert main(["explain", str(image), "--data", str(root), "--size", "32", "--out", str(out), "--n-jobs", "1"]) == 0
    assert (out / f"{image.stem}_attention.png").stat().st_size > 10_000
    saved = load_model(out / "model.skcxr")
    assert saved.target_names[0] == "Atelectasis" and hasattr(saved.model, "predict_proba")
    (title, views), = drawn
    top = saved.target_names[int(saved.model.predict_proba([str(image)])[0].argmax())]
    assert title.startswith(f"{image.name}: {top} ") and "\ntrue: " in title  # the label file's findings
    assert views[1] == f"Grad-CAM: {top}" and views[3].startswith("Fused (λ=0.5): ")
    drawn.clear()
    argv = ["explain", str(image), "--model", str(out / "model.skcxr"), "--out", str(out), "-q"]
    assert main(argv + ["--finding", "Effusion"]) == 0
    assert drawn[0][1][1] == "Grad-CAM: Effusion" and "true:" not in drawn[0][0]  # no labels without --data
    capsys.readouterr()
    assert main(argv + ["--finding", "Nope"]) == 1
    assert "--finding Nope: not a label of this model" in _one_error_line(capsys.readouterr().err)


# --- models that travel, progress, flags ------------------------------------------------------


def test_version_names_the_libraries(capsys):
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("skcxr ") and "scikit-learn" in out and "torch" in out


def test_python_dash_m_skcxr_is_the_command():
    done = subprocess.run([sys.executable, "-m", "skcxr", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith(f"skcxr {skcxr.__version__} ")


def test_saved_model_predicts_a_folder_with_and_without_labels(tmp_path, capsys):
    data = phantom_folder(tmp_path / "data", n=48, size=32)
    model = tmp_path / "model.skcxr"
    assert main(["run", "--data", str(data), "--size", "16", "--n-jobs", "1", "--n-boot", "50",
                 "--save-model", str(model), "--save-which", "classical", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "img/s" not in captured.err and "wrote" not in captured.out  # --quiet: no bars, no progress lines
    assert [p.name for p in tmp_path.iterdir() if "model" in p.name] == ["model.skcxr"]  # one file
    sidecar = read_description(model)
    assert sidecar["metrics"]["model"] == cli.BASELINE and len(sidecar["thresholds"]) == 14
    assert sidecar["data"]["images"] == 48 and len(sidecar["data"]["fingerprint"]) == 64
    assert sidecar["versions"]["skcxr"] and sidecar["target_names"][:2] == ["Atelectasis", "Cardiomegaly"]

    out = tmp_path / "pred"
    assert len(sidecar["data"]["images_seen"]) == sidecar["data"]["train"]
    assert main(["predict", "--model", str(model), "--data", str(data), "--out", str(out), "--n-boot", "50"]) == 0
    printed, err = capsys.readouterr()
    assert "Macro-AUC on the labelled images" in printed
    assert f"{sidecar['data']['train']} of 48 images were in the model's training data" in err  # the training part
    proba = pd.read_csv(out / "probabilities.csv", index_col="image")
    pred = pd.read_csv(out / "predictions.csv", index_col="image")
    assert list(proba.columns) == sidecar["target_names"] and len(proba) == 48
    assert proba.index[0].startswith("images/") and set(np.unique(pred.to_numpy())) <= {0, 1}
    np.testing.assert_array_equal(pred.to_numpy(), (proba.to_numpy() >= np.array(sidecar["thresholds"])).astype(int))
    assert 0 <= _strict_json(out / "metrics.json")["macro_auc"] <= 1

    plain = tmp_path / "plain" / "sub"  # any folder of images, no label file, nested
    plain.mkdir(parents=True)
    for name in sorted(os.listdir(data / "images"))[:3]:
        Image.open(data / "images" / name).convert("RGB").save(plain / name.replace(".png", ".jpg"))
    out2 = tmp_path / "pred2"
    assert main(["predict", "--model", str(model), "--data", str(tmp_path / "plain"), "--out", str(out2),
                 "--quiet"]) == 0
    again = pd.read_csv(out2 / "probabilities.csv", index_col="image")
    assert list(again.index) == sorted(f"sub/{n.replace('.png', '.jpg')}" for n in os.listdir(data / "images"))[:3]
    assert not (out2 / "metrics.json").exists()
    image = sorted((data / "images").iterdir())[0]
    assert main(["predict", str(image), "--model", str(model), "--out", str(tmp_path / "pred3"), "-q"]) == 0
    one = pd.read_csv(tmp_path / "pred3" / "probabilities.csv", index_col="image")
    np.testing.assert_allclose(one.to_numpy()[0], proba.loc[f"images/{image.name}"].to_numpy(), atol=1e-6)


def test_predict_refuses_a_model_of_another_version_in_one_line(tmp_path, capsys):
    from sklearn.dummy import DummyClassifier

    from skcxr.persistence import save_model

    model = tmp_path / "m.skcxr"
    save_model(DummyClassifier().fit([[0], [1]], [0, 1]), model, target_names=["x"])
    info = read_description(model)
    info["versions"]["skcxr"] = "0.0.1"
    with zipfile.ZipFile(model, "a") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": the last member of a name is the one read
        zf.writestr("skcxr.json", json.dumps(info))
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(image)
    assert main(["predict", str(image), "--model", str(model), "--out", str(tmp_path / "o")]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "skcxr 0.0.1" in line and "refit" in line
    assert main(["predict", "--model", str(model), "--out", str(tmp_path / "o")]) == 1
    assert "IMAGE files or --data" in _one_error_line(capsys.readouterr().err)


def test_official_split_uses_nih_lists(tmp_path, capsys, monkeypatch):
    data = phantom_folder(tmp_path / "data", n=48, size=32)
    names = sorted(os.listdir(data / "images"))
    (data / "train_val_list.txt").write_text("\n".join(names[:36]) + "\n")  # patients 1-18
    (data / "test_list.txt").write_text("\n".join(names[36:]) + "\n")       # patients 19-24
    seen = {}

    def record(models, X_train, Y_train, X_test, Y_test, **kwargs):
        seen["train"], seen["test"] = sorted(os.path.basename(p) for p in X_train), sorted(
            os.path.basename(p) for p in X_test)
        raise KeyboardInterrupt  # enough: the split is what this test is about

    monkeypatch.setattr(evaluation, "holdout_report", record)
    assert main(["run", "--data", str(data), "--split", "official", "--quiet"]) == 130
    assert seen == {"train": names[:36], "test": names[36:]}
    capsys.readouterr()
    (data / "test_list.txt").unlink()
    assert main(["run", "--data", str(data), "--split", "official"]) == 1
    assert "test_list.txt" in _one_error_line(capsys.readouterr().err)


def test_progress_bars_by_default_and_device_reaches_the_networks(tmp_path, capsys, monkeypatch):
    seen = {}

    def record(models, *args, **kwargs):
        seen["devices"] = {m.get_params()["features__cnn__device"] for n, m in models.items() if n != cli.BASELINE}
        seen["verbose"] = kwargs["verbose"]
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluation, "holdout_report", record)
    assert main(["demo", "--n-images", "40", "--size", "32", "--device", "cpu", "--verbose"]) == 130
    assert seen == {"devices": {"cpu"}, "verbose": 2}


def _bad_files(folder):
    """Break two images of a phantom folder: one truncated, one not an image."""
    images = sorted((folder / "images").iterdir())
    images[0].write_bytes(images[0].read_bytes()[:200])
    images[1].write_bytes(b"not a png")
    return images[0].name, images[1].name


def test_save_model_path_is_checked_before_training(tmp_path, capsys, monkeypatch):
    data = phantom_folder(tmp_path / "data", n=48, size=32)
    monkeypatch.setattr(_run, "_evaluate", lambda *a, **k: pytest.fail("trained before checking --save-model"))
    for path, named in [(tmp_path, "is a folder; give a file name"), (tmp_path / "no" / "m.skcxr", "no folder")]:
        assert main(["run", "--data", str(data), "--save-model", str(path), "-q"]) == 1
        assert named in _one_error_line(capsys.readouterr().err)


def test_predict_writes_the_good_rows_names_each_bad_file_and_leaves_nothing_stale(tmp_path, capsys):
    data = phantom_folder(tmp_path / "data", n=48, size=32)
    model = tmp_path / "model.skcxr"
    assert main(["run", "--data", str(data), "--size", "16", "--n-jobs", "1", "--n-boot", "20", "--threshold-cv", "0",
                 "--save-model", str(model), "--save-which", "classical", "-q"]) == 0
    out = tmp_path / "pred"
    assert main(["predict", "--model", str(model), "--data", str(data), "--out", str(out), "--n-boot", "20",
                 "-q"]) == 0
    assert (out / "metrics.json").exists()
    capsys.readouterr()
    truncated, junk = _bad_files(data)
    plain = tmp_path / "plain"  # the same folder without its label file: no metrics.json this time
    plain.mkdir()
    os.rename(data / "images", plain / "images")
    assert main(["predict", "--model", str(model), "--data", str(plain), "--out", str(out), "-q"]) == 1
    err = [line for line in capsys.readouterr().err.strip().splitlines() if "training data" not in line]
    assert len(err) == 3 and all(line.startswith("skcxr: error: ") for line in err)
    assert truncated in err[0] and junk in err[1] and "2 of 48 images could not be read" in err[2]
    proba = pd.read_csv(out / "probabilities.csv", index_col="image")
    assert len(proba) == 46 and f"images/{truncated}" not in proba.index
    assert list(pd.read_csv(out / "unreadable.csv")["image"]) == [f"images/{truncated}", f"images/{junk}"]
    assert not (out / "metrics.json").exists()  # the earlier run's, which these predictions do not match
    assert main(["predict", "--model", str(model), "--data", str(plain), "--out", str(out), "-q", "--skip-bad"]) == 0
    assert capsys.readouterr().err.count("skcxr: warning: cannot read") == 2
