"""NIH ChestX-ray14: the 14 findings, the label file with its images, and the expert boxes.

:func:`load_chestxray14` reads NIH's own layout (``Data_Entry_2017*.csv`` and
``images/`` or ``images_001/images/ ... images_012/images/``) into paths, a 0/1
label matrix ``Y`` and the patient ids a patient-wise split needs;
:func:`load_bboxes` reads ``BBox_List_2017.csv``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

__all__ = ["FINDINGS", "findings_to_Y", "load_chestxray14", "load_bboxes"]

#: The 14 ChestX-ray14 findings, in NIH's order and spelling.
FINDINGS = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
)
NO_FINDING = "No Finding"

# NIH header -> clean column name. The first seven are required.
_REQUIRED = {
    "Image Index": "image",
    "Finding Labels": "findings",
    "Follow-up #": "follow_up",
    "Patient ID": "patient_id",
    "Patient Age": "age",
    "Patient Gender": "sex",
    "View Position": "view",
}
# "OriginalImage[Width,Height]" and "...PixelSpacing[x,y]" split at their commas.
_OPTIONAL = {
    "OriginalImage[Width": "width",
    "Height]": "height",
    "OriginalImagePixelSpacing[x": "pixel_spacing_x",
    "y]": "pixel_spacing_y",
}
_SPLITS = ("train_val", "test")
_MISSING = ("raise", "drop", "ignore")
_AGE_UNITS = {"": 1, "Y": 1, "M": 12, "W": 52, "D": 365}  # DICOM age strings: 058Y, 007M, ...


def load_chestxray14(root, *, csv=None, views=None, split=None, missing="raise") -> Bunch:
    """Load NIH ChestX-ray14 labels and image paths from NIH's folder layout.

    Parameters
    ----------
    root : str or path-like
        Folder holding the label file and the images, either in ``root/images/``
        or in NIH's ``root/images_001/images/ ... root/images_012/images/``
        (both are indexed, once; a name found twice keeps the first, ``images/``
        before ``images_001/images/`` before ``images_002/images/``...).
    csv : str or path-like, optional
        The label file. By default the one file in ``root`` named
        ``Data_Entry_2017*.csv`` or ``Data_Entry_2017*.csv.gz``; when there are
        none or several, an error says so and asks for ``csv``. A relative name
        is looked up in ``root`` first.
    views : str or sequence of str, optional
        Keep only these ``View Position`` values, e.g. ``("PA",)``
        (case-insensitive).
    split : {"train_val", "test"}, optional
        Keep only the images listed in NIH's official ``root/train_val_list.txt``
        or ``root/test_list.txt`` (patient-wise split).
    missing : {"raise", "drop", "ignore"}, default="raise"
        What to do with rows whose image file is not found: raise a
        ``ValueError`` naming them, drop them with a warning, or keep them
        (labels only: their ``paths`` are where the file would be,
        ``root/images/<name>``). ``"ignore"`` needs no image folder at all, e.g.
        to study the full 112,120-row label file.

    Returns
    -------
    data : sklearn.utils.Bunch
        - ``paths``: ndarray (n,) of str (object dtype), one image path per row.
        - ``Y``: ndarray (n, 14) of uint8, 1 where the finding is present, in
          ``FINDINGS`` order; "No Finding" is an all-zero row.
        - ``target_names``: list of the 14 finding names.
        - ``patient_ids``: ndarray (n,) of int64, for patient-wise splits.
        - ``frame``: DataFrame of the kept CSV rows (index 0..n-1) with columns
          ``image, findings, follow_up, patient_id, age`` (int, years),
          ``sex, view`` and, when present, ``width, height, pixel_spacing_x,
          pixel_spacing_y``; other columns are kept under their own names.

    Raises
    ------
    FileNotFoundError
        If ``root``, the label file or a requested split file does not exist.
    ValueError
        For a missing column, an unknown finding name, "No Finding" together
        with a finding, an unreadable age or patient id, a duplicated image,
        missing image files (with ``missing="raise"``) or when no row is left;
        the message names the first offending CSV line/file and how many more
        there are.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from PIL import Image
    >>> from skcxr.datasets import load_chestxray14
    >>> root = tempfile.mkdtemp()
    >>> os.mkdir(os.path.join(root, "images"))
    >>> Image.fromarray(np.zeros((8, 8), np.uint8)).save(os.path.join(root, "images", "1.png"))
    >>> with open(os.path.join(root, "Data_Entry_2017.csv"), "w") as f:
    ...     _ = f.write("Image Index,Finding Labels,Follow-up #,Patient ID,"
    ...                 "Patient Age,Patient Gender,View Position\\n"
    ...                 "1.png,Cardiomegaly|Effusion,0,1,058Y,M,PA\\n")
    >>> data = load_chestxray14(root)
    >>> data.Y
    array([[0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]], dtype=uint8)
    >>> data.frame["age"].tolist(), data.patient_ids
    ([58], array([1]))
    """
    if missing not in _MISSING:
        raise ValueError(f"missing must be one of {_MISSING}, got {missing!r}.")
    if split is not None and split not in _SPLITS:
        raise ValueError(f"split must be None or one of {_SPLITS}, got {split!r}.")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"ChestX-ray14 folder not found: {str(root)!r}.")
    csv = _find_label_file(root, csv)
    frame = _read_label_file(csv)
    Y = _parse_findings(frame, csv)

    keep = np.ones(len(frame), dtype=bool)
    if views is not None:
        wanted = {views.upper()} if isinstance(views, str) else {str(v).upper() for v in views}
        view = frame["view"].astype(str).str.upper()
        keep &= view.isin(wanted).to_numpy()
        if not keep.any():
            raise ValueError(
                f"No row of {str(csv)!r} has View Position in {sorted(wanted)}; "
                f"present: {sorted(view.unique())}."
            )
    if split is not None:
        list_file = root / f"{split}_list.txt"
        if not list_file.is_file():
            raise FileNotFoundError(
                f"split={split!r} needs NIH's official {list_file.name} in {str(root)!r}; "
                "it is not there."
            )
        names = {line.strip() for line in list_file.read_text().splitlines() if line.strip()}
        keep &= frame["image"].isin(names).to_numpy()

    folders = _image_folders(root)
    index = _index_images(folders)
    found = frame["image"].map(index)
    absent = keep & found.isna().to_numpy()
    if absent.any() and missing != "ignore":
        if folders:
            where = "from " + ", ".join(repr(str(f)) for f in folders)
        else:
            where = f"(no images/ or images_001/images/ ... folder in {str(root)!r})"
        k, n = int(absent.sum()), int(keep.sum())
        first = np.flatnonzero(absent)[0]
        detail = _first_and_more(frame, first, k)
        if missing == "raise":
            raise ValueError(
                f"{k} of {n} images listed in {str(csv)!r} are missing {where}: {detail}. "
                "Pass missing='drop' to leave these rows out, or missing='ignore' to keep "
                "the labels without images."
            )
        warnings.warn(
            f"Dropped {k} of {n} rows of {str(csv)!r} whose image is missing {where}: "
            f"{detail}.",
            UserWarning,
            stacklevel=2,
        )
        keep &= ~absent
    if not keep.any():
        raise ValueError(f"No row of {str(csv)!r} is left after the views/split/missing filters.")

    frame = frame[keep].reset_index(drop=True)
    found = found[keep].reset_index(drop=True)
    default_dir = os.path.join(os.fspath(root), "images")
    paths = [
        p if isinstance(p, str) else os.path.join(default_dir, name)
        for p, name in zip(found, frame["image"])
    ]
    return Bunch(
        paths=np.array(paths, dtype=object),
        Y=Y[keep],
        target_names=list(FINDINGS),
        patient_ids=frame["patient_id"].to_numpy(dtype=np.int64),
        frame=frame,
    )


def load_bboxes(path) -> pd.DataFrame:
    """Read NIH's expert bounding boxes (``BBox_List_2017.csv`` or ``.csv.gz``).

    Parameters
    ----------
    path : str or path-like
        The file, or a folder holding ``BBox_List_2017.csv(.gz)``.

    Returns
    -------
    boxes : DataFrame
        One row per box with columns ``image`` (file name), ``finding`` (a name
        from ``FINDINGS``; NIH's "Infiltrate" becomes "Infiltration"), and
        ``x, y, w, h`` (float, pixels of the original 1024 x 1024 image; scale
        by ``size / 1024`` for a resized one).

    Examples
    --------
    >>> import os, tempfile
    >>> from skcxr.datasets import load_bboxes
    >>> path = os.path.join(tempfile.mkdtemp(), "BBox_List_2017.csv")
    >>> with open(path, "w") as f:
    ...     _ = f.write("Image Index,Finding Label,Bbox [x,y,w,h],,,\\n"
    ...                 "00013118_008.png,Infiltrate,225.1,547.0,86.8,79.2\\n")
    >>> load_bboxes(path)[["finding", "w"]].values.tolist()
    [['Infiltration', 86.8]]
    """
    path = Path(path)
    if path.is_dir():
        candidates = [path / "BBox_List_2017.csv", path / "BBox_List_2017.csv.gz"]
        existing = [p for p in candidates if p.is_file()]
        if not existing:
            raise FileNotFoundError(f"No BBox_List_2017.csv or .csv.gz in {str(path)!r}.")
        path = existing[0]
    elif not path.is_file():
        raise FileNotFoundError(f"Bounding-box file not found: {str(path)!r}.")
    raw = pd.read_csv(path)
    head = [str(c).strip() for c in raw.columns[:2]]
    if raw.shape[1] < 6 or head != ["Image Index", "Finding Label"]:
        raise ValueError(
            f"{str(path)!r} is not NIH's box list: expected columns 'Image Index', "
            f"'Finding Label', 'Bbox [x,y,w,h]' (6 fields), got {list(raw.columns)}."
        )
    boxes = raw.iloc[:, :6].copy()
    boxes.columns = ["image", "finding", "x", "y", "w", "h"]
    boxes["image"] = boxes["image"].astype(str).str.strip()
    finding = boxes["finding"].astype(str).str.strip()
    boxes["finding"] = finding.replace("Infiltrate", "Infiltration")
    unknown = ~boxes["finding"].isin(FINDINGS)
    if unknown.any():
        first = np.flatnonzero(unknown)[0]
        raise ValueError(
            f"{str(path)!r}, line {first + 2}: unknown finding {boxes['finding'].iloc[first]!r}"
            f"{_more(int(unknown.sum()))}; expected one of {FINDINGS}."
        )
    coords = boxes[["x", "y", "w", "h"]].apply(pd.to_numeric, errors="coerce").astype(float)
    bad = coords.isna().any(axis=1).to_numpy()
    if bad.any():
        first = np.flatnonzero(bad)[0]
        raise ValueError(
            f"{str(path)!r}, line {first + 2}: box coordinates are not numbers "
            f"{raw.iloc[first, 2:6].tolist()}{_more(int(bad.sum()))}."
        )
    boxes[["x", "y", "w", "h"]] = coords
    return boxes


def _more(k: int, what: str = "") -> str:
    return f" (and {k - 1} more{what})" if k > 1 else ""


def _first_and_more(frame: pd.DataFrame, pos: int, k: int) -> str:
    return f"line {int(frame.index[pos]) + 2} ({frame['image'].iloc[pos]}){_more(k)}"


def _find_label_file(root: Path, csv) -> Path:
    if csv is not None:
        csv = Path(csv)
        for candidate in (root / csv, csv):
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(
            f"Label file not found: {str(csv)!r} (also looked in {str(root)!r})."
        )
    found = sorted(
        p
        for p in root.glob("Data_Entry_2017*")
        if p.name.endswith((".csv", ".csv.gz")) and p.is_file()
    )
    if not found:
        raise FileNotFoundError(
            f"No Data_Entry_2017*.csv or .csv.gz in {str(root)!r}; "
            "pass csv= to name the label file."
        )
    if len(found) > 1:
        raise ValueError(
            f"Several label files in {str(root)!r}: {[p.name for p in found]}; "
            "pass csv= to choose one."
        )
    return found[0]


def _read_label_file(csv: Path) -> pd.DataFrame:
    frame = pd.read_csv(csv)
    frame.columns = [str(c).strip() for c in frame.columns]
    # NIH's original file ends each line with a comma: an empty, unnamed column.
    empty = [c for c in frame.columns if c.startswith("Unnamed:") and frame[c].isna().all()]
    frame = frame.drop(columns=empty)
    lacking = [c for c in _REQUIRED if c not in frame.columns]
    if lacking:
        raise ValueError(
            f"{str(csv)!r} lacks the column(s) {lacking}; NIH's label file has "
            f"{list(_REQUIRED)} (found {list(frame.columns)})."
        )
    frame = frame.rename(columns={**_REQUIRED, **_OPTIONAL})
    frame["image"] = frame["image"].astype(str).str.strip()
    dup = frame["image"].duplicated(keep="first").to_numpy()
    if dup.any():
        first = np.flatnonzero(dup)[0]
        raise ValueError(
            f"{str(csv)!r}, line {first + 2}: image {frame['image'].iloc[first]!r} "
            f"appears more than once{_more(int(dup.sum()), ' duplicates')}."
        )
    frame["patient_id"] = _parse_int(frame, "patient_id", "Patient ID", csv)
    frame["age"] = _parse_age(frame, csv)
    return frame


def _parse_int(frame: pd.DataFrame, column: str, header: str, csv: Path) -> pd.Series:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = (values.isna() | (values != values.round())).to_numpy()
    if bad.any():
        first = np.flatnonzero(bad)[0]
        raise ValueError(
            f"{str(csv)!r}, line {first + 2} ({frame['image'].iloc[first]}): {header} "
            f"{frame[column].iloc[first]!r} is not an integer{_more(int(bad.sum()))}."
        )
    return values.astype(np.int64)


def _parse_age(frame: pd.DataFrame, csv: Path) -> pd.Series:
    """Whole years from 58, 58.0 or DICOM age strings ('058Y', '007M', '030D')."""
    age = frame["age"]
    if pd.api.types.is_numeric_dtype(age):
        number, unit = age.astype(float), pd.Series(1.0, index=age.index)
    else:
        parts = age.astype(str).str.strip().str.upper().str.extract(r"^(\d+)([YMWD]?)$")
        number, unit = parts[0].astype(float), parts[1].map(_AGE_UNITS).astype(float)
    bad = (number.isna() | (number != number.round())).to_numpy()
    if bad.any():
        first = np.flatnonzero(bad)[0]
        raise ValueError(
            f"{str(csv)!r}, line {first + 2} ({frame['image'].iloc[first]}): Patient Age "
            f"{age.iloc[first]!r} is neither a whole number of years nor like '058Y'"
            f"{_more(int(bad.sum()))}."
        )
    return (number // unit).astype(np.int64)


def findings_to_Y(labels, target_names=FINDINGS) -> np.ndarray:
    """Turn NIH "Finding Labels" strings into the 0/1 target matrix ``Y``.

    Every skcxr estimator takes the disease target as a 2-D 0/1 indicator
    matrix, one column per finding; this builds it from the labels as NIH
    writes them. ``"No Finding"`` (or an empty list) is an all-zero row, never
    a column of its own.

    Parameters
    ----------
    labels : sequence of str, or of lists of str
        One entry per image: NIH's ``'|'``-separated string (``"Effusion|Mass"``,
        ``"No Finding"``), or a list/tuple/set of finding names
        (``["Effusion", "Mass"]``; ``[]`` is no finding). A pandas Series works.
    target_names : sequence of str, default=FINDINGS
        The columns of ``Y``, in order (NIH's 14 findings by default).

    Returns
    -------
    Y : ndarray of shape (n_images, len(target_names)), dtype uint8
        1 where the finding is present.

    Raises
    ------
    ValueError
        If a name is not in ``target_names`` (the message names the unknown
        names and the first entry holding one), an entry is empty, not a
        string or combines ``"No Finding"`` with a finding, or ``labels`` is a
        single string.

    See Also
    --------
    sklearn.preprocessing.MultiLabelBinarizer : the same for any names, columns learnt from the data.

    Examples
    --------
    >>> from skcxr.datasets import findings_to_Y
    >>> findings_to_Y(["Effusion|Mass", "No Finding"])
    array([[0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]], dtype=uint8)
    >>> findings_to_Y([["Mass"], []], target_names=["Mass", "Nodule"])
    array([[1, 0],
           [0, 0]], dtype=uint8)
    """
    if isinstance(labels, (str, bytes)):
        raise ValueError(
            f"labels must hold one label string per image, got the single string {labels!r}; "
            f"pass [{labels!r}] for one image."
        )
    target_names = _check_target_names(target_names)
    labels = list(labels)
    Y, problems = _encode_findings(labels, target_names)
    if problems:
        count = f"; {len(problems)} entries in all" if len(problems) > 1 else ""
        unknown = sorted({name for what in problems.values() if isinstance(what, tuple) for name in what})
        if unknown:
            first = min(r for r, what in problems.items() if isinstance(what, tuple))
            detail = f"Unknown finding name(s) {unknown} (first in labels[{first}] = {labels[first]!r}{count})"
        else:
            first = min(problems)
            detail = f"labels[{first}] = {labels[first]!r} is {problems[first]}{count}"
        raise ValueError(
            f"{detail}; expected '|'-separated names from {list(target_names)} or {NO_FINDING!r}, "
            "or lists of those names."
        )
    return Y


def _check_target_names(target_names) -> tuple:
    if isinstance(target_names, (str, bytes)):
        raise ValueError(f"target_names must be a sequence of names, got the string {target_names!r}.")
    names = tuple(target_names)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"target_names must be non-empty strings, got {names!r}.")
    if len(set(names)) != len(names):
        raise ValueError(f"target_names holds duplicates: {names!r}.")
    if NO_FINDING in names:
        raise ValueError(f"{NO_FINDING!r} is an all-zero row of Y, not a column: leave it out of target_names.")
    return names


def _encode_findings(labels: list, target_names: tuple) -> tuple[np.ndarray, dict]:
    """(Y, problems): Y (n, L) uint8 and {row: tuple of unknown names, or a str saying what is wrong}.

    Each distinct entry is parsed once (112,120 rows hold about 800 distinct strings).
    """
    column = {name: j for j, name in enumerate(target_names)}
    keys = []
    for entry in labels:
        if isinstance(entry, (list, tuple, set, frozenset, np.ndarray)):
            entry = tuple(sorted(str(v) for v in entry)) if all(isinstance(v, str) for v in entry) else None
        elif not isinstance(entry, str):
            entry = None  # NaN, numbers: not a label string
        keys.append(entry)
    codes, uniques = pd.factorize(pd.Series(keys, dtype=object))  # None -> code -1
    table = np.zeros((len(uniques) + 1, len(target_names)), dtype=np.uint8)  # last row: missing
    bad: dict[int, object] = {}
    for u, key in enumerate(uniques):
        tokens = [t.strip() for t in (key.split("|") if isinstance(key, str) else key)]
        if isinstance(key, str) and not key.strip():
            bad[u] = "an empty string (write 'No Finding' for an image without findings)"
            continue
        unknown = []
        for token in tokens:
            if token in column:
                table[u, column[token]] = 1
            elif token != NO_FINDING:
                unknown.append(token)
        if unknown:
            bad[u] = tuple(unknown)
        elif NO_FINDING in tokens and set(tokens) != {NO_FINDING}:
            bad[u] = f"{NO_FINDING!r} together with a finding (an image has findings or none)"
    problems = {int(r): bad[int(codes[r])] for r in np.flatnonzero(np.isin(codes, list(bad)))}
    for r in np.flatnonzero(codes < 0):
        problems[int(r)] = "not a label string or a list of names"
    return table[codes], problems


def _parse_findings(frame: pd.DataFrame, csv: Path) -> np.ndarray:
    """(n, 14) uint8 from the label file's '|'-separated Finding Labels (see :func:`findings_to_Y`)."""
    Y, problems = _encode_findings(frame["findings"].tolist(), FINDINGS)
    if problems:
        first = min(problems)
        what = problems[first]
        value = frame["findings"].iloc[first]
        if isinstance(what, tuple):
            what = f"unknown finding {what[0]!r}" if len(what) == 1 else f"unknown findings {list(what)}"
        elif pd.isna(value):
            what = "empty Finding Labels"
        else:
            what = f"Finding Labels {value!r} is {what}"
        raise ValueError(
            f"{str(csv)!r}, line {first + 2} ({frame['image'].iloc[first]}): {what}"
            f"{_more(len(problems), ' rows with bad labels')}; expected '|'-separated "
            f"names from {FINDINGS} or {NO_FINDING!r}."
        )
    return Y


def _image_folders(root: Path) -> list[Path]:
    folders = [root / "images"] if (root / "images").is_dir() else []
    return folders + sorted(p for p in root.glob("images_*/images") if p.is_dir())


def _index_images(folders: list[Path]) -> dict[str, str]:
    index: dict[str, str] = {}
    for folder in folders:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name not in index and entry.is_file():
                    index[entry.name] = entry.path
    return index
