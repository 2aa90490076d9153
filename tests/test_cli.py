"""The ``skcxr`` command as a user runs it."""

import json
import os
import subprocess
import sys

import pandas as pd

from skcxr.cli import main


def test_demo_prints_the_results_table(capsys, tmp_path):
    assert main(["demo", "--n-images", "120", "--size", "64", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| Model" in out and "Macro-AUC" in out and "Hybrid MLP" in out
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert set(results) == {"Logistic regression (LBP+HOG)", "Hybrid MLP (LBP+HOG+ResNet18)"}
    assert all(0 <= r["Macro-AUC"] <= 1 for r in results.values())


def test_run_on_a_chestxray14_folder(nih_root, tmp_path, capsys):
    frame = pd.read_csv(nih_root / "Data_Entry_2017.csv").iloc[:40]
    (tmp_path / "images").mkdir()
    for name in frame["Image Index"]:
        os.symlink(nih_root / "images" / name, tmp_path / "images" / name)
    frame.to_csv(tmp_path / "Data_Entry_2017.csv", index=False)
    out = tmp_path / "out"
    assert main(["run", "--data", str(tmp_path), "--size", "32", "--out", str(out)]) == 0
    assert "patient-wise split" in capsys.readouterr().out
    table = pd.read_csv(out / "results.csv", index_col=0)
    assert list(table.columns[:4]) == ["Micro-F1", "Macro-F1", "Hamming loss", "Macro-AUC"]


def test_wrong_path_is_one_line_of_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "skcxr.cli", "run", "--data", str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "nowhere" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_names_the_commands():
    proc = subprocess.run([sys.executable, "-m", "skcxr.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "demo" in proc.stdout and "run" in proc.stdout
