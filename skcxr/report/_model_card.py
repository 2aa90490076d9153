"""The report's model card: intended use, data, label noise, limitations and citation."""

from __future__ import annotations

from ._html import _esc, _pretty


def _model_card(result, names, sources) -> str:
    n_train = None if result.Y_train is None else len(result.Y_train)
    data = f"{n_train:,} training and " if n_train is not None else ""
    source_text = f" from {_esc(', '.join(sources))}" if sources else ""
    return f"""
<div class="warning"><b>Research use only.</b> These models are not medical devices. They must not be used to
diagnose, triage or treat anyone, nor to support any clinical decision.</div>
<h3>Intended use</h3>
<p>Comparing methods for multi-label finding classification on chest radiographs ({len(names)} findings:
{_esc(", ".join(_pretty(n) for n in names))}) under a patient-wise split, in research and teaching. The numbers
describe this test part only; they were not validated prospectively, on other hospitals or on other
scanners.</p>
<h3>Data</h3>
<p>This run: {data}{len(result.Y_test):,} test images{source_text}, split by patient (no patient on both
sides). skcxr is built for NIH ChestX-ray14 (ChestX-ray8): 112,120 frontal radiographs of 30,805 patients
from the NIH Clinical Center, released for unrestricted use with the request to cite the paper below and
acknowledge the NIH Clinical Center. Findings are not independent of the acquisition: view position (PA/AP),
age and follow-up status differ between findings, and a model can learn them.</p>
<h3>Label noise</h3>
<p>NIH's labels were text-mined from radiology reports with natural-language processing, not read from the
images. Wang et al. report precision and recall of about 0.9 for the mining on hand-labelled reports; visual
review of the images (Oakden-Rayner, <i>Exploring large-scale public medical image datasets</i>, Academic
Radiology 2020) found many labels that the radiograph does not support, worse for some findings than for
others. The test labels are as noisy as the training labels: AUCs measure agreement with the reports' text
mining, and an AUC near 1 is not reachable. “No Finding” means that no finding was mined from the report, not
a verified normal study.</p>
<h3>Limitations</h3>
<ul>
<li>Small test parts give wide intervals: differences whose intervals overlap are not established.</li>
<li>Probabilities of class-weighted models are not calibrated (see Calibration): use them for ranking.</li>
<li>Subgroup results average over different findings (see Results by subgroup).</li>
<li>Attention maps show where the model's evidence lies, not where the disease is.</li>
</ul>
<h3>Citation</h3>
<p>Xiaosong Wang, Yifan Peng, Le Lu, Zhiyong Lu, Mohammadhadi Bagheri, Ronald M. Summers.
<i>ChestX-ray8: Hospital-scale Chest X-ray Database and Benchmarks on Weakly-Supervised Classification and
Localization of Common Thorax Diseases.</i> IEEE CVPR 2017, pp. 2097–2106.
<a href="https://arxiv.org/abs/1705.02315">arXiv:1705.02315</a>.
Data: NIH Clinical Center,
<a href="https://nihcc.app.box.com/v/ChestXray-NIHCC">nihcc.app.box.com/v/ChestXray-NIHCC</a>.</p>
"""
