"""Grid-search the attention system's fusion weight lam and its MLP's dropout, patient-grouped.

``make_attention_pipeline("maps")``: a U-Net lung map U and a Grad-CAM G per image, fused as
F = lam*U + (1-lam)*G, pooled, into the skorch MLP. With ``memory=``, the U-Net maps, the ResNet18
fine-tunings behind the Grad-CAMs and the CAMs are computed once per training fold and read back by
all 9 candidates, by every ``n_jobs`` worker, and by the next run of this script (keys hold the images'
content, the parameters and the code version; an integer ``random_state`` is needed for anything
random to be cached). Run it twice: the second run computes none of them.

    python examples/grid_search.py
"""

import sklearn
from sklearn.model_selection import GridSearchCV

from skcxr.datasets import make_phantoms
from skcxr.features import ResNetEmbedder
from skcxr.metrics import get_scorer
from skcxr.model_selection import MultilabelStratifiedGroupKFold
from skcxr.neural import MLP, MultilabelNeuralNetClassifier
from skcxr.pipelines import make_attention_pipeline

data = make_phantoms(120, size=64, random_state=0)
cnn = ResNetEmbedder(fine_tune="all", epochs=2, image_size=64, random_state=0)  # the network Grad-CAM explains
mlp = MultilabelNeuralNetClassifier(MLP, max_epochs=30, random_state=0)
pipe = make_attention_pipeline("maps", cnn=cnn, classifier=mlp, size=64, memory="skcxr-cache", random_state=0)
search = GridSearchCV(pipe, {"fusion__lam": [0.25, 0.5, 0.75], "clf__module__dropout": [0.2, 0.4, 0.6]},
                      cv=MultilabelStratifiedGroupKFold(3, shuffle=True, random_state=0),
                      scoring=get_scorer("macro_auc"), n_jobs=2)
before = pipe.memory.stats()
# Patient ids go to the CV folds and, routed by request, to the fine-tuning's and the MLP's validation splits.
with sklearn.config_context(enable_metadata_routing=True):
    search.fit(data.images, data.Y, groups=data.patient_ids)

print("best:", search.best_params_, f"macro-AUC {search.best_score_:.3f}")
for params, auc in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
    print(f"{auc:.3f}  {params}")
computed = pipe.memory.stats() - before  # this run's cached calls, all workers: (function, event) -> count
print("computed:", {name.rsplit(".", 1)[1]: n for (name, event), n in sorted(computed.items())
                    if event == "miss" and name.startswith("skcxr.")})  # a second run: {}
