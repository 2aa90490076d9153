"""load_chestxray14 / load_bboxes on the real NIH files, and on small folders built from them."""

from __future__ import annotations

import csv
import doctest
import gzip
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from skcxr.datasets import FINDINGS, chestxray14, findings_to_Y, load_bboxes, load_chestxray14, read_image

HEADER = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
          "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]")

# NIH's published totals over all 112,120 images (README of the release, 2017/2020).
NIH_TOTALS = {"Atelectasis": 11559, "Cardiomegaly": 2776, "Effusion": 13317, "Infiltration": 19894,
              "Mass": 5782, "Nodule": 6331, "Pneumonia": 1431, "Pneumothorax": 5302,
              "Consolidation": 4667, "Edema": 2303, "Emphysema": 2516, "Fibrosis": 1686,
              "Pleural_Thickening": 3385, "Hernia": 227}


def _rows(path: Path) -> list[dict]:
    """The CSV with the standard library only: an independent reference."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as f:
        return list(csv.DictReader(f))


def _check_against_csv(data, csv_path: Path):
    rows = _rows(csv_path)
    assert len(data.paths) == len(rows) == data.Y.shape[0] == len(data.patient_ids) == len(data.frame)
    assert data.Y.dtype == np.uint8 and data.Y.shape[1] == 14 and set(np.unique(data.Y)) <= {0, 1}
    assert data.target_names == list(FINDINGS)
    expected = {r["Image Index"]: set(r["Finding Labels"].split("|")) - {"No Finding"} for r in rows}
    for image, y in zip(data.frame["image"], data.Y):
        assert {FINDINGS[j] for j in np.flatnonzero(y)} == expected[image]
    assert [os.path.basename(p) for p in data.paths] == data.frame["image"].tolist()
    assert data.patient_ids.dtype == np.int64
    np.testing.assert_array_equal(data.patient_ids, [int(r["Patient ID"]) for r in rows])
    return rows


def test_findings_are_nih_names_in_order():
    assert FINDINGS[:3] == ("Atelectasis", "Cardiomegaly", "Effusion")
    assert len(FINDINGS) == 14 and FINDINGS[-2:] == ("Pleural_Thickening", "Hernia")


def test_all_421_nih_images(nih_root):
    data = load_chestxray14(nih_root)
    rows = _check_against_csv(data, nih_root / "Data_Entry_2017.csv")
    assert len(rows) == 421 and len(set(data.patient_ids)) == 421
    assert all(os.path.isfile(p) for p in data.paths)
    frame = data.frame
    for column in ["image", "findings", "follow_up", "patient_id", "age", "sex", "view", "width", "height"]:
        assert column in frame.columns
    assert frame["age"].dtype == np.int64 and frame["age"].between(0, 120).all()
    assert set(frame["sex"]) <= {"M", "F"} and set(frame["view"]) <= {"PA", "AP"}
    assert read_image(data.paths[0]).ndim == 2


def test_nih64_995_images_263_patients(nih64_root):
    data = load_chestxray14(nih64_root)
    _check_against_csv(data, nih64_root / "Data_Entry_2017.csv")
    assert len(data.paths) == 995 and len(np.unique(data.patient_ids)) == 263


def test_full_label_file_counts(full_label_file, capsys):
    data = load_chestxray14(full_label_file.parent, csv=full_label_file.name, missing="ignore")
    rows = _rows(full_label_file)
    counted = Counter(f for r in rows for f in r["Finding Labels"].split("|"))
    counts = dict(zip(FINDINGS, data.Y.sum(axis=0).tolist()))
    with capsys.disabled():
        print(f"\nChestX-ray14 label file: {len(data.paths)} images, "
              f"{len(np.unique(data.patient_ids))} patients")
        for name, k in sorted(counts.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<20}{k:>7}  ({100 * k / len(data.paths):5.2f}%)")
        print(f"  {'No Finding':<20}{int((data.Y.sum(axis=1) == 0).sum()):>7}")
    assert len(data.paths) == len(rows) == 112_120
    assert len(np.unique(data.patient_ids)) == len({r["Patient ID"] for r in rows}) == 30_805
    assert counts == {f: counted[f] for f in FINDINGS} == NIH_TOTALS
    assert int((data.Y.sum(axis=1) == 0).sum()) == counted["No Finding"] == 60_361
    assert (data.frame["view"] == "PA").sum() == sum(r["View Position"] == "PA" for r in rows)
    # labels only: paths say where each image would be
    assert data.paths[0] == os.path.join(str(full_label_file.parent), "images", rows[0]["Image Index"])


def test_views_filter(nih_root):
    rows = _rows(nih_root / "Data_Entry_2017.csv")
    pa = load_chestxray14(nih_root, views=("PA",))
    assert len(pa.paths) == sum(r["View Position"] == "PA" for r in rows) > 0
    assert (pa.frame["view"] == "PA").all() and pa.Y.shape == (len(pa.paths), 14)
    ap = load_chestxray14(nih_root, views="ap")
    assert len(ap.paths) + len(pa.paths) == len(rows)
    with pytest.raises(ValueError, match="LL"):
        load_chestxray14(nih_root, views=["LL"])


# --- small folders built from real rows and images ---------------------------------------


def _make_root(tmp_path, nih_root, n=6, *, layout="flat", absent=(), edit=None, tail="", gz=False):
    """A ChestX-ray14 folder with the first n real rows and their images (symlinked)."""
    lines = (nih_root / "Data_Entry_2017.csv").read_text().splitlines()[1 : n + 1]
    cells = [line.split(",") for line in lines]
    if edit:
        edit(cells)
    root = tmp_path / "cxr"
    root.mkdir()
    text = "\n".join([HEADER + tail] + [",".join(c) + tail for c in cells]) + "\n"
    if gz:
        with gzip.open(root / "Data_Entry_2017_v2020.csv.gz", "wt") as f:
            f.write(text)
    else:
        (root / "Data_Entry_2017.csv").write_text(text)
    for i, c in enumerate(cells):
        if i in absent:
            continue
        folder = root / ("images" if layout == "flat" else f"images_{i % 2 + 1:03d}/images")
        folder.mkdir(parents=True, exist_ok=True)
        try:
            os.symlink(nih_root / "images" / c[0], folder / c[0])
        except OSError:
            shutil.copy(nih_root / "images" / c[0], folder / c[0])
    return root, [c[0] for c in cells]


def test_nih_multi_folder_layout(tmp_path, nih_root):
    root, names = _make_root(tmp_path, nih_root, layout="nih")
    data = load_chestxray14(root)
    assert data.frame["image"].tolist() == names
    for i, path in enumerate(data.paths):
        assert Path(path).parent == root / f"images_{i % 2 + 1:03d}" / "images"
    reference = load_chestxray14(nih_root)
    np.testing.assert_array_equal(data.Y, reference.Y[:6])
    assert read_image(data.paths[1]).shape == read_image(reference.paths[1]).shape


def test_age_strings_trailing_comma_and_gzip(tmp_path, nih_root):
    def age_strings(cells):
        for c in cells:
            c[4] = f"{int(c[4]):03d}Y"
    root, _ = _make_root(tmp_path, nih_root, edit=age_strings, tail=",", gz=True)
    data = load_chestxray14(root)
    reference = load_chestxray14(nih_root)
    assert data.frame["age"].tolist() == reference.frame["age"][:6].tolist()
    assert data.frame["age"].dtype == np.int64
    assert not [c for c in data.frame.columns if c.startswith("Unnamed")]
    np.testing.assert_array_equal(data.Y, reference.Y[:6])


def test_unknown_finding_names_row_and_count(tmp_path, nih_root):
    def typo(cells):
        cells[1][1] = "Effusion|Pneumonitis"
        cells[3][1] = "Pneumonitis"
    root, names = _make_root(tmp_path, nih_root, edit=typo)
    with pytest.raises(ValueError, match=rf"line 3 \({names[1]}\).*'Pneumonitis'.*and 1 more"):
        load_chestxray14(root)


def test_no_finding_together_with_a_finding_names_the_row(tmp_path, nih_root):
    def contradiction(cells):
        cells[2][1] = "No Finding|Effusion"
    root, names = _make_root(tmp_path, nih_root, edit=contradiction)
    with pytest.raises(ValueError, match=rf"line 4 \({names[2]}\): Finding Labels 'No Finding\|Effusion' is "
                                         r"'No Finding' together with a finding"):
        load_chestxray14(root)


# --- findings_to_Y: the public helper load_chestxray14 uses ------------------------------------


def test_findings_to_Y_known_answer():
    Y = findings_to_Y(["Effusion|Mass", "No Finding", "Hernia", " Atelectasis | Hernia "])
    assert Y.dtype == np.uint8 and Y.shape == (4, 14)
    assert [[FINDINGS[j] for j in np.flatnonzero(y)] for y in Y] == [
        ["Effusion", "Mass"], [], ["Hernia"], ["Atelectasis", "Hernia"]]


def test_findings_to_Y_lists_series_and_own_names():
    import pandas as pd

    np.testing.assert_array_equal(findings_to_Y([["Mass", "Effusion"], [], ("Hernia",)]),
                                  findings_to_Y(pd.Series(["Effusion|Mass", "No Finding", "Hernia"], index=[7, 3, 5])))
    np.testing.assert_array_equal(findings_to_Y(["b|a", "No Finding", "c"], target_names=["a", "b", "c"]),
                                  [[1, 1, 0], [0, 0, 0], [0, 0, 1]])
    assert findings_to_Y([], target_names=["a"]).shape == (0, 1)


@pytest.mark.parametrize(
    "labels, kwargs, match",
    [
        (["Effusion|Tumour", "Mass", "Pneumonitis"], {}, r"\['Pneumonitis', 'Tumour'\].*labels\[0\] = 'Effusion\|Tumour'; 2 entries"),
        (["effusion"], {}, r"Unknown finding name.*'effusion'.*'Effusion'"),
        (["Mass", ""], {}, r"labels\[1\] = '' is an empty string.*No Finding"),
        (["Mass", float("nan")], {}, r"labels\[1\] = nan is not a label string"),
        (["Mass", "Effusion|No Finding"], {}, r"labels\[1\] = 'Effusion\|No Finding' is 'No Finding' together"),
        ([["No Finding", "Mass"]], {}, r"'No Finding' together with a finding"),
        ([["Mass", 3]], {}, r"not a label string or a list of names"),
        ("Effusion|Mass", {}, r"single string.*\['Effusion\|Mass'\]"),
        (["Mass"], {"target_names": ["Mass", "No Finding"]}, "not a column"),
        (["Mass"], {"target_names": ["Mass", "Mass"]}, "duplicates"),
        (["Mass"], {"target_names": "Mass"}, "sequence of names"),
    ],
)
def test_findings_to_Y_refuses_with_names(labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        findings_to_Y(labels, **kwargs)


def test_load_chestxray14_Y_is_findings_to_Y_of_the_label_column(nih64_root):
    data = load_chestxray14(nih64_root)
    np.testing.assert_array_equal(data.Y, findings_to_Y(data.frame["findings"]))


def test_bad_age_and_missing_column(tmp_path, nih_root):
    def bad_age(cells):
        cells[2][4] = "old"
    root, names = _make_root(tmp_path, nih_root, edit=bad_age)
    with pytest.raises(ValueError, match=rf"line 4 \({names[2]}\).*'old'"):
        load_chestxray14(root)
    csv_path = root / "Data_Entry_2017.csv"
    lines = [",".join(x for j, x in enumerate(line.split(",")) if j != 4)
             for line in csv_path.read_text().splitlines()]
    csv_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="Patient Age"):
        load_chestxray14(root)


def test_missing_images_raise_drop_ignore(tmp_path, nih_root):
    root, names = _make_root(tmp_path, nih_root, absent=(2, 4))
    with pytest.raises(ValueError, match=rf"2 of 6 .*line 4 \({names[2]}\) \(and 1 more\).*missing='drop'"):
        load_chestxray14(root)
    with pytest.warns(UserWarning, match=rf"Dropped 2 of 6.*{names[2]}"):
        dropped = load_chestxray14(root, missing="drop")
    assert dropped.frame["image"].tolist() == [names[i] for i in (0, 1, 3, 5)]
    assert all(os.path.isfile(p) for p in dropped.paths) and dropped.Y.shape == (4, 14)
    kept = load_chestxray14(root, missing="ignore")
    assert len(kept.paths) == 6 and kept.paths[2] == str(root / "images" / names[2])
    with pytest.raises(ValueError, match="missing must be"):
        load_chestxray14(root, missing="skip")


def test_official_split_files(tmp_path, nih_root):
    root, names = _make_root(tmp_path, nih_root)
    with pytest.raises(FileNotFoundError, match="test_list.txt"):
        load_chestxray14(root, split="test")
    (root / "train_val_list.txt").write_text("\n".join(names[:4] + ["99999999_000.png"]) + "\n")
    (root / "test_list.txt").write_text("\n".join(names[4:]) + "\n")
    train, test = load_chestxray14(root, split="train_val"), load_chestxray14(root, split="test")
    assert train.frame["image"].tolist() == names[:4] and test.frame["image"].tolist() == names[4:]
    with pytest.raises(ValueError, match="split must be"):
        load_chestxray14(root, split="validation")


def test_label_file_choice(tmp_path, nih_root):
    root, _ = _make_root(tmp_path, nih_root)
    shutil.copy(root / "Data_Entry_2017.csv", root / "Data_Entry_2017_v2020.csv")
    with pytest.raises(ValueError, match="Several label files.*csv="):
        load_chestxray14(root)
    assert len(load_chestxray14(root, csv="Data_Entry_2017_v2020.csv").paths) == 6
    for p in root.glob("Data_Entry*"):
        p.unlink()
    with pytest.raises(FileNotFoundError, match="Data_Entry_2017"):
        load_chestxray14(root)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_chestxray14(tmp_path / "nowhere")


def test_bboxes(shared_data, tmp_path):
    boxes = load_bboxes(shared_data)  # the folder form finds BBox_List_2017.csv.gz
    assert list(boxes.columns) == ["image", "finding", "x", "y", "w", "h"]
    assert len(boxes) == 984 and boxes["image"].nunique() == 880
    assert set(boxes["finding"]) <= set(FINDINGS)
    assert (boxes["finding"] == "Infiltration").sum() == 123  # NIH spells it "Infiltrate" there
    assert (boxes[["w", "h"]] > 0).all().all() and boxes[["x", "y"]].max().max() < 1024
    bad = tmp_path / "BBox_List_2017.csv"
    bad.write_text("Image Index,Finding Label,Bbox [x,y,w,h],,,\na.png,Mass,1,2,3,4\nb.png,Tumour,1,2,3,4\n")
    with pytest.raises(ValueError, match="line 3.*'Tumour'"):
        load_bboxes(bad)


def test_docstring_examples():
    result = doctest.testmod(chestxray14, raise_on_error=False)
    assert result.attempted > 0 and result.failed == 0  # the examples ran, and passed
