"""scikit-learn's API checks that need no data, on every image estimator.

Image estimators take stacks of images (or paths), not the 2-D tables that
``check_estimator`` feeds, so its data-driven checks cannot run; the checks below
need no data, and the modules' own tests check the same properties (clone,
pickling, fit/transform contracts) on images.
"""

import pytest
from sklearn.base import clone
from sklearn.utils import estimator_checks

from skcxr.features import HOGFeatures, LBPFeatures, ResNetEmbedder
from skcxr.preprocessing import CXRPreprocessor

API_CHECKS = [
    "check_no_attributes_set_in_init",
    "check_get_params_invariance",
    "check_set_params",
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_parameters_default_constructible",
    "check_mixin_order",
    "check_valid_tag_types",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_estimator_tags_renamed",
]
ESTIMATORS = [CXRPreprocessor(), LBPFeatures(), HOGFeatures(), ResNetEmbedder()]


@pytest.mark.parametrize("check", API_CHECKS)
@pytest.mark.parametrize("est", ESTIMATORS, ids=lambda est: type(est).__name__)
def test_sklearn_api_checks_without_data(est, check):
    getattr(estimator_checks, check)(type(est).__name__, clone(est))
