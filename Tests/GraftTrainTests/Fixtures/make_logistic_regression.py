"""Reference solutions of multinomial logistic regression from scikit-learn, for
LogisticRegressionTests: `python3 make_logistic_regression.py` (scikit-learn 1.x,
numpy) rewrites logistic_regression.json.

scikit-learn minimises C * sum_i w_i CE_i + ||W||^2 / 2 (intercept unpenalised);
dividing by C * n gives Graft's objective sum_i w_i CE_i / n + (l2 / 2) ||W||^2 with
l2 = 1 / (C n). With class_weight="balanced", sum_i w_i = n, so that is Graft's
weighted mean.
"""
import json

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression

rng = np.random.default_rng(7)
counts = [30, 12, 6]  # imbalanced classes
centres = rng.normal(0, 1.5, size=(3, 5))
X = np.concatenate([centres[c] + rng.normal(0, 1.2, size=(n, 5)) for c, n in enumerate(counts)])
y = np.concatenate([[c] * n for c, n in enumerate(counts)])
order = rng.permutation(len(y))
X, y = X[order].astype(np.float32), y[order]
n = len(y)

cases = []
for C, weighting in [(1.0, None), (0.5, "balanced"), (20.0, "balanced")]:
    model = LogisticRegression(C=C, class_weight=weighting, tol=1e-10, max_iter=10000).fit(X, y)
    cases.append({"l2": 1 / (C * n), "balanced": weighting == "balanced",
                  "weight": model.coef_.tolist(), "bias": model.intercept_.tolist()})

with open("logistic_regression.json", "w") as f:
    json.dump({"sklearn": sklearn.__version__, "features": X.tolist(), "labels": y.tolist(), "cases": cases}, f)
print(f"wrote logistic_regression.json: {n} examples, {len(cases)} cases (scikit-learn {sklearn.__version__})")
