"""Grid-search the MLP's dropout and depth against logistic regression, patient-grouped everywhere.

The features are computed once: the pipeline's ``memory`` caches every step
before the classifier, so only the classifier is refitted per grid point.

    python examples/grid_search.py
"""

import sklearn
from sklearn.model_selection import GridSearchCV

from skcxr.datasets import make_phantoms
from skcxr.metrics import SCORERS
from skcxr.model_selection import MultilabelStratifiedGroupKFold
from skcxr.neural import MLP, DeeperMLP, MultilabelNeuralNetClassifier
from skcxr.pipelines import make_hybrid_pipeline, make_logistic_regression

data = make_phantoms(240, size=96, random_state=0)
mlp = MultilabelNeuralNetClassifier(MLP, random_state=0)
pipe = make_hybrid_pipeline(classifier=mlp, size=96, random_state=0, memory="skcxr-cache")
grid = [
    {"clf__module": [MLP, DeeperMLP], "clf__module__dropout": [0.2, 0.5]},
    {"clf": [make_logistic_regression(C) for C in (1e-4, 1e-2)]},
]
search = GridSearchCV(pipe, grid, scoring=SCORERS, refit="macro_auc",
                      cv=MultilabelStratifiedGroupKFold(3, shuffle=True, random_state=0))
# Patient ids go to the CV folds and to the MLP's inner split. The grid also swaps in logistic regression,
# whose fit takes no groups, so route them by request (scikit-learn's metadata routing) rather than by name.
with sklearn.config_context(enable_metadata_routing=True):
    search.fit(data.images, data.Y, groups=data.patient_ids)
print("best:", search.best_params_, f"macro-AUC {search.best_score_:.3f}")
for params, auc in zip(search.cv_results_["params"], search.cv_results_["mean_test_macro_auc"]):
    print(f"{auc:.3f}  {params}")
