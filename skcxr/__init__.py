"""skcxr: scikit-learn estimators for multi-label chest X-ray disease detection.

Every stage (preprocessing, LBP/HOG texture features, a CNN embedding such as the ImageNet EfficientNet-Lite,
MLP classifiers, ...) is an estimator that fits in a scikit-learn ``Pipeline``. See
``skcxr.pipelines`` for ready-made pipelines and ``skcxr.datasets`` for data.
"""

__version__ = "0.3.0"
