"""Fit the hybrid pipeline (LBP + HOG + ResNet18 -> logistic regression), then swap in the skorch MLP.

    python examples/hybrid_fit.py                                   # embedded phantoms
    python examples/hybrid_fit.py --data ../shared/data/nih --size 128
"""

import argparse

import pandas as pd

from skcxr.datasets import load_chestxray14, make_phantoms
from skcxr.metrics import multilabel_report
from skcxr.model_selection import groups_params, train_test_split_by_patient
from skcxr.neural import MLP, MultilabelNeuralNetClassifier
from skcxr.pipelines import make_hybrid_pipeline

parser = argparse.ArgumentParser()
parser.add_argument("--data", help="ChestX-ray14 folder (Data_Entry_2017*.csv + images/); phantoms if absent")
parser.add_argument("--size", type=int, default=128)
args = parser.parse_args()

if args.data:
    data = load_chestxray14(args.data)
    X, Y, patients, names = data.paths, data.Y, data.patient_ids, data.target_names
else:
    data = make_phantoms(300, size=args.size, random_state=0)
    X, Y, patients, names = data.images, data.Y, data.patient_ids, data.target_names

X_tr, X_te, Y_tr, Y_te, patients_tr, _ = train_test_split_by_patient(
    X, Y, patients, groups=patients, stratify=Y, test_size=0.25, random_state=0)

pipe = make_hybrid_pipeline(size=args.size, n_jobs=2, random_state=0, memory="skcxr-cache")
pipe.fit(X_tr, Y_tr)
logistic = multilabel_report(Y_te, pipe.predict_proba(X_te), target_names=names)

pipe.set_params(clf=MultilabelNeuralNetClassifier(MLP, random_state=0))  # one line: same features, the MLP
pipe.fit(X_tr, Y_tr, **groups_params(pipe, patients_tr))  # features from the cache; patient-wise early stopping
mlp = multilabel_report(Y_te, pipe.predict_proba(X_te), target_names=names)

print(pd.concat([logistic.to_frame("Hybrid, logistic regression"), mlp.to_frame("Hybrid MLP")])
      .to_markdown(floatfmt=".3f"))
