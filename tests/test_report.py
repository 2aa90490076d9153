"""The HTML report: one self-contained page with every section, valid figures, and a browser that renders it."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.dummy import DummyClassifier
from sklearn.multiclass import OneVsRestClassifier

from skcxr.datasets import make_phantoms
from skcxr.evaluation import holdout_report
from skcxr.model_selection import train_test_split_by_patient
from skcxr.pipelines import make_classical_pipeline
from skcxr.report import SECTIONS, _gallery, write_report
from conftest import phantom_folder

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CITATION_LINKS = {"https://arxiv.org/abs/1705.02315", "https://nihcc.app.box.com/v/ChestXray-NIHCC"}


class _Page(HTMLParser):
    """The tags of a page that matter here: ids, images, links, scripts and everything that fetches."""

    def __init__(self):
        super().__init__()
        self.ids, self.images, self.anchors, self.fetching, self.scripts = set(), [], [], [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "script":
            self.scripts += 1
        if tag == "img":
            self.images.append(attrs)
        if tag == "a" and "href" in attrs:
            self.anchors.append(attrs["href"])
        for name in ("src", "srcset", "data", "poster"):  # whatever a browser would load
            if name in attrs:
                self.fetching.append(attrs[name])
        if tag == "link" and "href" in attrs:
            self.fetching.append(attrs["href"])


def _parse(path: Path) -> tuple[str, _Page]:
    text = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    return text, page


def _decoded_pngs(page: _Page) -> list[Image.Image]:
    out = []
    for attrs in page.images:
        src = attrs["src"]
        assert src.startswith("data:image/png;base64,"), src[:60]
        raw = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert raw.startswith(PNG_SIGNATURE)
        Image.open(io.BytesIO(raw)).verify()  # checksums and structure
        image = Image.open(io.BytesIO(raw))
        assert image.format == "PNG" and min(image.size) > 100
        assert attrs.get("alt"), "every figure has an alt text"
        out.append(image)
    return out


def _assert_self_contained(text: str, page: _Page) -> None:
    assert page.scripts == 0
    for url in page.fetching:  # images, icons, stylesheets: all inline
        assert url.startswith("data:"), url[:80]
    for href in page.anchors:
        assert href.startswith("#") or href in CITATION_LINKS, href
    assert "@import" not in text and "url(" not in text.replace("data:", "")  # no fetch from the CSS
    outside = re.findall(r"https?://[^\s\"'<>]+", text)
    assert set(outside) <= CITATION_LINKS, set(outside) - CITATION_LINKS


@pytest.fixture(scope="module")
def phantom_run():
    """A patient-wise split of phantoms with sources and metadata, scored for a texture model and a prior."""
    data = make_phantoms(140, size=64, random_state=0)
    n = len(data.Y)
    patients = np.arange(n) // 2
    rng = np.random.default_rng(0)
    metadata = pd.DataFrame({"sex": rng.choice(["F", "M"], n), "age": rng.integers(5, 90, n),
                             "view": rng.choice(["PA", "AP"], n)})
    sources = np.where(patients % 3 == 0, "site-a", "site-b")
    train, test = train_test_split_by_patient(np.arange(n), groups=patients, stratify=data.Y, test_size=0.35,
                                              random_state=0)
    texture = make_classical_pipeline(size=64).set_params(features__hog__pixels_per_cell=(8, 8))
    models = {"LR (LBP+HOG)": texture, "prior": OneVsRestClassifier(DummyClassifier(strategy="prior"))}
    result = holdout_report(models, data.images[train], data.Y[train], data.images[test], data.Y[test],
                            groups_train=patients[train], groups_test=patients[test],
                            sources_train=sources[train], sources_test=sources[test],
                            target_names=data.target_names, baseline="prior", n_boot=200, random_state=0)
    return {"result": result, "X_test": data.images[test], "metadata": metadata.iloc[test], "names": data.target_names}


@pytest.fixture(scope="module")
def full_page(phantom_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return write_report(phantom_run["result"], out, X_test=phantom_run["X_test"], metadata=phantom_run["metadata"],
                        config={"seed": 0, "size": 64, "data": ["phantoms"]}, n_cases=2)


def test_holdout_result_keeps_what_the_report_needs(phantom_run):
    result = phantom_run["result"]
    n = len(phantom_run["X_test"])
    assert result.Y_test.shape == (n, 7) and result.groups_test.shape == (n,) and result.sources_test.shape == (n,)
    assert result.Y_train.shape[0] + n == 140 and len(result.sources_train) == len(result.Y_train)
    assert result.target_names == list(phantom_run["names"])
    assert (result.n_boot, result.confidence, result.random_state) == (200, 0.95, 0)


def test_page_is_written_self_contained_with_every_section(full_page):
    assert full_page.name == "report.html" and full_page.parent.is_dir()
    text, page = _parse(full_page)
    assert set(SECTIONS) <= page.ids
    for heading in SECTIONS.values():
        assert f">{heading}</h2>" in text
    _assert_self_contained(text, page)
    # 6 figures (comparison, AUC bars, ROC, reliability, subgroups, labels) and 2 cases of each of 3 kinds at most
    images = _decoded_pngs(page)
    assert 7 <= len(images) <= 6 + 3 * 2
    assert len(full_page.read_bytes()) < 5_000_000


def test_page_content(full_page, phantom_run):
    text, _ = _parse(full_page)
    result = phantom_run["result"]
    lr = result.summary.loc["LR (LBP+HOG)"]
    # the results table with its intervals, and the baseline difference
    assert f"{lr['Macro-AUC']:.3f} [{lr['AUC low']:.3f}, {lr['AUC high']:.3f}]" in text
    assert f"{lr['ΔAUC']:+.3f} [{lr['ΔAUC low']:+.3f}, {lr['ΔAUC high']:+.3f}]" in text
    assert "Within source site-a" in text and "Within source site-b" in text
    for kind in ("Sensitivity at fixed specificity", "spec ≥ 0.80", "spec ≥ 0.95", "Brier", "reference p(1−p)"):
        assert kind in text
    # subgroups from the metadata, the label distribution per source and part
    for group in ("sex", "age band", "view position", "&lt; 18", "≥ 60", "PA", "AP"):
        assert group in text
    for part in ("train · site-a", "train · site-b", "test · site-a", "test · site-b", "No Finding"):
        assert part in text
    # gallery: the three kinds, and why there is no Grad-CAM for a texture model
    for kind in ("True positives", "False positives", "False negatives"):
        assert kind in text
    assert "not an attention pipeline" in text and "cam=" in text
    # model card, settings and versions
    for phrase in ("Research use only", "not for diagnosis", "text-mined", "Wang", "ChestX-ray8", "CVPR 2017",
                   "scikit-learn", "torch", "Python", "CPU"):
        assert phrase in text
    assert "size" in text and "phantoms" in text  # the run's settings


def test_tuned_thresholds_are_those_of_the_result(full_page, phantom_run):
    text, _ = _parse(full_page)
    for value in phantom_run["result"].thresholds["LR (LBP+HOG)"]:
        assert f"<td>{value:.3f}</td>" in text


def test_missing_inputs_are_named_not_dropped(phantom_run, tmp_path):
    result = phantom_run["result"]
    page = write_report(result, tmp_path / "deep" / "folder", segmenter=None)
    text, parsed = _parse(page)
    assert set(SECTIONS) <= parsed.ids
    assert "pass <code>metadata=</code>" in text and "pass <code>X_test=</code>" in text
    _assert_self_contained(text, parsed)
    _decoded_pngs(parsed)


class _Stub(TransformerMixin, BaseEstimator):
    """A fitted stand-in map maker: a bright square where a (preprocessed) image is brightest."""

    def fit(self, X, y=None):
        self.fitted_ = True
        return self

    def transform(self, X):
        X = np.asarray(X, dtype=np.float32)
        return (X > np.percentile(X, 90, axis=(1, 2), keepdims=True)).astype(np.float32)


def test_a_given_cam_and_segmenter_make_all_three_maps(phantom_run, tmp_path, monkeypatch):
    drawn = []
    original = _gallery.map_panel

    def spy(image, maps, **kwargs):
        drawn.append([name for name, _ in maps])
        return original(image, maps, **kwargs)

    monkeypatch.setattr(_gallery, "map_panel", spy)
    page = write_report(phantom_run["result"], tmp_path, X_test=phantom_run["X_test"], cam=_Stub().fit(None),
                        segmenter=_Stub().fit(None), finding="Effusion", model="LR (LBP+HOG)", n_cases=1)
    assert drawn and all(names == ["CAM", "U-Net lung mask", "Fused map"] for names in drawn)
    text, _ = _parse(page)
    assert "Finding <b>Effusion</b>, model <b>LR (LBP+HOG)</b>" in text


def test_gallery_of_an_attention_pipeline_uses_its_own_maps(tmp_path, monkeypatch, one_torch_thread):
    from skcxr.features import ResNetEmbedder
    from skcxr.pipelines import make_attention_pipeline

    data = make_phantoms(60, size=32, random_state=1)
    cnn = ResNetEmbedder(fine_tune="all", epochs=1, image_size=32, random_state=0)
    pipe = make_attention_pipeline("maps", cnn=cnn, size=32, cv=None, random_state=0)
    result = holdout_report({"attention": pipe}, data.images[:40], data.Y[:40], data.images[40:], data.Y[40:],
                            target_names=data.target_names, threshold_cv=None, n_boot=50, random_state=0)
    drawn = []
    original = _gallery.map_panel

    def spy(image, maps, **kwargs):
        drawn.append({name: np.asarray(m) for name, m in maps})
        return original(image, maps, **kwargs)

    monkeypatch.setattr(_gallery, "map_panel", spy)
    page = write_report(result, tmp_path, X_test=data.images[40:], finding="Cardiomegaly", n_cases=1)
    assert drawn and all(list(maps) == ["Grad-CAM", "U-Net lung mask", "Fused map"] for maps in drawn)
    for maps in drawn:
        assert all(m.shape == (32, 32) and 0 <= m.min() and m.max() <= 1 for m in maps.values())
    text, parsed = _parse(page)
    assert "is an attention pipeline" in text
    _assert_self_contained(text, parsed)


@pytest.mark.parametrize("kwargs, match", [
    ({"finding": "Hernia"}, "finding='Hernia' is not one of"),
    ({"finding": 7}, "out of range"),
    ({"model": "nope"}, "model='nope'"),
    ({"specificities": (0.9, 1.0)}, "specificities"),
    ({"metadata": pd.DataFrame({"sex": ["F"]})}, "metadata has 1 rows"),
    ({"X_test": np.zeros((3, 8, 8))}, "X_test has 3 images"),
    ({"n_cases": 0}, "n_cases"),
    ({"age_bands": (40, 18)}, "age_bands"),
    ({"cam": "gradcam"}, "cam must be"),
])
def test_bad_arguments(phantom_run, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        write_report(phantom_run["result"], tmp_path, **kwargs)
    assert not (tmp_path / "report.html").exists()


def test_a_result_without_test_labels_is_refused(phantom_run, tmp_path):
    result = phantom_run["result"]
    bare = type(result)(summary=result.summary, proba=result.proba, reports=result.reports)
    with pytest.raises(ValueError, match="Y_test"):
        write_report(bare, tmp_path)


@pytest.mark.real_data
def test_real_images_with_nih_metadata(nih64_root, tmp_path):
    from skcxr.datasets import load_chestxray14

    data = load_chestxray14(nih64_root)
    keep = np.flatnonzero(np.isin(data.patient_ids, np.unique(data.patient_ids)[:70]))
    paths, Y, patients, frame = data.paths[keep], data.Y[keep], data.patient_ids[keep], data.frame.iloc[keep]
    p_tr, p_te, Y_tr, Y_te, g_tr, g_te, _, f_te = train_test_split_by_patient(
        paths, Y, patients, frame, groups=patients, stratify=Y, test_size=0.3, random_state=0)
    texture = make_classical_pipeline(size=64).set_params(features__hog__pixels_per_cell=(8, 8))
    result = holdout_report({"LR (LBP+HOG)": texture}, p_tr, Y_tr, p_te, Y_te, groups_train=g_tr, groups_test=g_te,
                            target_names=data.target_names, threshold_cv=None, n_boot=100, random_state=0)
    page = write_report(result, tmp_path, X_test=p_te, metadata=f_te, n_cases=1)
    text, parsed = _parse(page)
    assert set(SECTIONS) <= parsed.ids
    assert "sex: M" in text or ">M<" in text
    assert Path(p_te[0]).name in text or "True positives" in text
    _assert_self_contained(text, parsed)
    _decoded_pngs(parsed)


def test_skcxr_run_writes_the_report(tmp_path, capsys):
    from skcxr.cli import main

    a = phantom_folder(tmp_path / "site-a", n=40, seed=1, first_patient=1)
    b = phantom_folder(tmp_path / "site-b", n=40, seed=2, first_patient=1000)
    assert main(["run", "--data", str(a), str(b), "--size", "16", "--n-boot", "50", "--n-jobs", "1",
                 "--threshold-cv", "0", "--report", str(tmp_path / "report")]) == 0
    page = tmp_path / "report" / "report.html"
    assert f"wrote {page}" in capsys.readouterr().out
    text, parsed = _parse(page)
    assert set(SECTIONS) <= parsed.ids
    for phrase in ("train · site-a", "test · site-b", "sex", "age band", "view position", "True positives"):
        assert phrase in text
    _assert_self_contained(text, parsed)


def test_unwritable_report_folder_is_refused_before_loading(tmp_path, capsys):
    from skcxr.cli import main

    (tmp_path / "file.txt").write_text("x")
    folder = phantom_folder(tmp_path / "data", n=40, seed=1, first_patient=1)
    assert main(["run", "--data", str(folder), "--report", str(tmp_path / "file.txt" / "r")]) == 1
    assert "--report" in capsys.readouterr().err


# --- the page in a browser ------------------------------------------------------------------------------


def _chrome():
    """(browser binary, chromedriver) or a skip naming what is missing."""
    pytest.importorskip("selenium", reason="selenium is not installed (pip install selenium)")
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)),
                   None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium chromium-driver)")
    return browser, driver


def test_page_renders_in_headless_chromium(full_page, tmp_path):
    browser, driver_path = _chrome()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,900", "--disable-extensions"):
        options.add_argument(argument)
    options.binary_location = browser
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.get(full_page.resolve().as_uri())
        driver.execute_script("return document.readyState")
        problems = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
        assert not problems, problems
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.alt])")
        assert len(images) >= 7
        assert all(done and width > 0 and height > 0 for done, width, height, _ in images), images
        assert driver.execute_script("return document.title") == "skcxr evaluation report"
        for key in SECTIONS:
            assert driver.execute_script(f"return document.getElementById('{key}') !== null")
        # nothing wider than the window: tables scroll inside their box, figures shrink
        widest = driver.execute_script("return document.documentElement.scrollWidth")
        assert widest <= 1280, widest
        width, height = driver.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
    finally:
        driver.quit()
    raw = base64.b64decode(shot["data"])
    screenshot = tmp_path / "report_full_page.png"
    screenshot.write_bytes(raw)
    image = Image.open(screenshot)
    assert image.size[1] > 3000 and image.size[0] >= 1000
    keep = os.environ.get("SKCXR_REPORT_SCREENSHOT")  # a path to keep the full-page screenshot for a look
    if keep:
        Path(keep).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, keep)
