"""Progress you can see: silent by default, bars with images/s or epoch losses at verbose=1."""

import numpy as np
import pytest

from skcxr.datasets import make_phantoms
from skcxr.features import HOGFeatures, LBPFeatures
from skcxr.neural import MultilabelNeuralNetClassifier
from skcxr.preprocessing import CXRPreprocessor


@pytest.fixture(scope="module")
def images():
    return CXRPreprocessor(size=64).fit_transform(make_phantoms(6, size=64, random_state=0).images)


@pytest.mark.parametrize("make", [lambda v: CXRPreprocessor(size=32, verbose=v), lambda v: LBPFeatures(verbose=v),
                                  lambda v: HOGFeatures(verbose=v)])
def test_image_steps_are_silent_by_default_and_show_images_per_second(make, images, capsys):
    make(0).fit_transform(images)
    assert capsys.readouterr().err == ""
    make(1).fit_transform(images)
    err = capsys.readouterr().err
    assert "6/6" in err and "img/s" in err


def test_training_shows_an_epoch_bar_with_losses_or_the_table():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5)).astype(np.float32)
    Y = (X[:, :2] > 0).astype(int)
    outputs = {}
    for verbose in (0, 1, 2):
        import contextlib
        import io

        err, out = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            MultilabelNeuralNetClassifier(max_epochs=3, random_state=0, verbose=verbose).fit(X, Y)
        outputs[verbose] = (out.getvalue(), err.getvalue())
    assert outputs[0] == ("", "")
    assert "3/3" in outputs[1][1] and "valid_loss" in outputs[1][1] and outputs[1][0] == ""
    assert "train_loss" in outputs[2][0] and "epoch" in outputs[2][0]  # skorch's table on stdout
