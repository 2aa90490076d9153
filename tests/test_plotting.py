"""Plotting: overlay values and orientation, the attention panel, the model comparison chart."""

from __future__ import annotations

import doctest

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure
from sklearn.datasets import make_multilabel_classification
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from skcxr.evaluation import holdout_report
from skcxr.plotting import _comparison, _findings, _maps, attention_panel, overlay, plot_model_comparison


def _ramp(dtype=np.float32, lo=-1.0, hi=1.0):
    """64 x 64 image brightening from top to bottom."""
    return np.repeat(np.linspace(lo, hi, 64)[:, None], 64, axis=1).astype(dtype)


@pytest.mark.parametrize("image", [_ramp(), _ramp(lo=0.0), (_ramp(lo=0.0) * 255).astype(np.uint8)])
def test_zero_heatmap_is_the_gray_image_blended_with_the_lowest_colour(image):
    rgb = overlay(image, np.zeros((64, 64)), alpha=0.4)
    assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8
    gray = (np.linspace(0, 1, 64)[:, None, None] * np.ones((1, 64, 1)))
    expected = 255 * (0.6 * gray + 0.4 * np.array(matplotlib.colormaps["jet"](0.0)[:3]))
    np.testing.assert_allclose(rgb, expected, atol=4)  # percentile stretch: within a few gray levels


def test_heatmap_is_not_stretched_and_is_resized():
    image = np.zeros((32, 32))
    weak = overlay(image, np.full((4, 4), 0.1), alpha=1.0)
    assert weak.shape == (32, 32, 3)
    expected = np.round(255 * np.array(matplotlib.colormaps["jet"](0.1)[:3]))
    np.testing.assert_array_equal(weak[10, 10], expected)  # 0.1 stays 0.1, not the top of the colormap
    np.testing.assert_array_equal(overlay(image, np.zeros((4, 4)), alpha=0), np.zeros((32, 32, 3)))


def test_overlay_keeps_the_top_row_on_top():
    image = np.zeros((40, 30))
    image[:3] = 1  # bright top rows
    heat = np.zeros((40, 30))
    heat[-3:] = 1  # hot bottom rows
    rgb = overlay(image, heat, alpha=0.5, cmap="gray").astype(int)
    assert rgb[0].mean() > rgb[20].mean() and rgb[-1].mean() > rgb[20].mean()
    assert rgb[0, 0, 0] == 128 and rgb[-1, 0, 0] == 128 and rgb[20, 0, 0] == 0


@pytest.mark.parametrize("kwargs, match", [
    ({"image": np.zeros((2, 4, 4))}, "2-D gray"),
    ({"heatmap": np.zeros((2, 4, 4))}, "2-D map"),
    ({"heatmap": np.full((4, 4), np.nan)}, "NaN"),
    ({"alpha": 1.5}, "alpha"),
])
def test_overlay_bad_input(kwargs, match):
    args = {"image": np.zeros((4, 4)), "heatmap": np.zeros((4, 4)), **kwargs}
    with pytest.raises(ValueError, match=match):
        overlay(**args)


def test_attention_panel_has_four_upright_images_and_saves(tmp_path):
    image = _ramp()
    cam = np.zeros((8, 8))
    cam[1, 1] = 1
    mask = np.zeros((64, 64), dtype=bool)
    mask[10:50, 5:30] = True
    fig = attention_panel(image, cam, mask, (cam.repeat(8, 0).repeat(8, 1) + mask) / 2, title="t",
                          boxes=[(5, 10, 25, 40, "Mass"), (40, 40, 8, 8)])
    assert isinstance(fig, Figure)
    image_axes = [ax for ax in fig.axes if ax.images]
    assert len(image_axes) == 4 and len(fig.axes) == 5  # four views and the colorbar
    for ax in image_axes:
        bottom, top = ax.get_ylim()
        assert bottom > top  # row 0 at the top, as a radiograph
        assert len(ax.patches) == 2
    assert [ax.get_title() for ax in image_axes] == ["X-ray", "Grad-CAM", "U-Net lung mask", "Fused map"]
    assert fig.axes[-1].get_ylim() == (0.0, 1.0)  # the colorbar's fixed range
    fig.savefig(tmp_path / "panel.png")
    assert (tmp_path / "panel.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="four titles"):
        attention_panel(image, cam, mask, mask, labels=["a"])


@pytest.fixture(scope="module")
def result():
    X, Y = make_multilabel_classification(160, n_classes=3, random_state=0)
    models = {"LR": OneVsRestClassifier(LogisticRegression(max_iter=500)),
              "prior": OneVsRestClassifier(DummyClassifier(strategy="prior"))}
    sources = np.where(np.arange(60) % 2, "a", "b")
    return holdout_report(models, X[:100], Y[:100], X[100:], Y[100:], sources_test=sources, baseline="prior",
                          threshold_cv=None, n_boot=50, random_state=0)


def test_model_comparison_from_a_holdout_result(result, tmp_path):
    fig = plot_model_comparison(result, title="test")
    auc_ax, delta_ax = [ax for ax in fig.axes if ax.get_xlabel()]
    assert [t.get_text() for t in auc_ax.get_yticklabels()] == ["LR", "prior"]
    assert len(auc_ax.containers) == 3  # pooled, within a, within b
    assert "ΔAUC vs prior" in delta_ax.get_xlabel()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "pooled test images", *(f"within {s} test images" for s in result.by_source)]
    pooled = auc_ax.containers[0].lines[0].get_xdata()
    np.testing.assert_allclose(pooled, result.summary["Macro-AUC"].to_numpy())
    fig.savefig(tmp_path / "comparison.png")


def test_model_comparison_without_baseline_has_one_panel(result):
    result = type(result)(summary=result.summary.drop(columns=["ΔAUC", "ΔAUC low", "ΔAUC high"]))
    fig = plot_model_comparison(result)
    assert len([ax for ax in fig.axes if ax.get_xlabel()]) == 1
    with pytest.raises(ValueError, match="baseline"):
        plot_model_comparison(result, baseline="nope")


@pytest.mark.parametrize("module", [_maps, _comparison, _findings])
def test_docstring_examples(module):
    result = doctest.testmod(module, raise_on_error=False)
    assert result.attempted > 0 and result.failed == 0


# --- the report's figures ------------------------------------------------------------------------------


def test_map_panel_with_no_map_and_with_two():
    from skcxr.plotting import map_panel

    image = _ramp()
    alone = map_panel(image, {})
    assert len(alone.axes) == 1 and alone.axes[0].get_title() == "X-ray"  # no colorbar without maps
    mask = np.zeros((64, 64))
    mask[10:50, 10:30] = 1
    fig = map_panel(image, [("CAM", mask * 0.3), ("lungs", mask)], contour=("lungs",), title="t")
    image_axes = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in image_axes] == ["X-ray", "CAM", "lungs"] and len(fig.axes) == 4
    assert not image_axes[1].collections and image_axes[2].collections  # the contour on the mask only


def test_class_auc_bars_start_at_chance_with_intervals():
    import pandas as pd

    from skcxr.plotting import plot_class_auc

    table = pd.DataFrame({"AUC": [0.8, 0.4, np.nan], "AUC low": [0.7, 0.3, np.nan], "AUC high": [0.9, 0.5, np.nan]},
                         index=["Effusion", "Nodule", "Hernia"])
    fig = plot_class_auc({"A": table, "B": table.assign(AUC=[0.6, 0.55, np.nan])})
    ax = fig.axes[0]
    bars = ax.patches
    assert len(bars) == 4 and all(b.get_x() == pytest.approx(0.5) for b in bars)
    assert sorted(round(b.get_x() + b.get_width(), 3) for b in bars) == [0.4, 0.55, 0.6, 0.8]
    assert sum("undefined" in t.get_text() for t in ax.texts) == 2
    assert "AUC" in ax.get_xlabel() and ax.get_xlim()[1] <= 1.05
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Effusion", "Nodule", "Hernia"]


def test_roc_and_reliability_panels_per_finding():
    from skcxr.plotting import plot_reliability, plot_roc_curves

    rng = np.random.default_rng(0)
    Y = rng.integers(0, 2, (80, 5))
    Y[:, 4] = 0  # undefined
    scores = {"good": np.clip(Y * 0.4 + rng.uniform(0, 0.6, Y.shape), 0, 1), "poor": rng.uniform(0, 1, Y.shape)}
    names = ["A", "B", "C", "D", "Pleural_Thickening"]
    roc = plot_roc_curves(Y, scores, names, ncols=3)
    visible = [ax for ax in roc.axes if ax.get_visible()]
    assert len(visible) == 5 and visible[-1].get_title().startswith("Pleural Thickening")
    assert len(visible[0].get_legend().get_texts()) == 2 and "undefined" in visible[-1].texts[0].get_text()
    assert all(ax.get_xlim() == (0.0, 1.0) for ax in visible)
    reliability = plot_reliability(Y, scores, names)
    panels = [ax for ax in reliability.axes if ax.get_visible()]
    assert len(panels) == 5 and all("Brier" in t.get_text() for t in panels[0].get_legend().get_texts())
    with pytest.raises(ValueError, match="shape"):
        plot_roc_curves(Y, {"bad": scores["good"][:, :2]}, names)


def test_label_distribution_bars_are_prevalences():
    from skcxr.plotting import plot_label_distribution

    Y = np.array([[1, 0], [0, 0], [1, 1], [0, 0]])
    fig = plot_label_distribution({"train": Y, "test": Y[:2]}, ["Mass", "Nodule"], colors=["C0", "C0"],
                                  hatches=["", "//"])
    widths = sorted(round(b.get_width(), 1) for b in fig.axes[0].patches)
    assert widths == sorted([50.0, 25.0, 50.0, 50.0, 0.0, 50.0])
    assert "%" in fig.axes[0].get_xlabel()
    with pytest.raises(ValueError, match="one entry per part"):
        plot_label_distribution({"train": Y}, colors=["C0", "C1"])
