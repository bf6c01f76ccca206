"""Classical baselines measured with scikit-learn on the experiment's data (``--classical``).

The seed paper's Figure 6 compares its network with older methods; here three of them are
measured on the same images as the networks (the first 24,345 training images, the 10,000 test
images), each fitted once (they are deterministic given the data):

- PCA to 50 components + an SVM with an RBF kernel (the classic strong baseline),
- k-nearest neighbours (k = 3, Euclidean, on the same 50 PCA components),
- a linear model: multinomial logistic regression on the 784 pixels.

Pixels are scaled to 0..1 for all three. ``fit_seconds`` is the wall time of fitting (PCA
included), on the machine named in the summary.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from .._io import write_json
from ..errors import UsageError

__all__ = ["METHODS", "measure_classical"]

PCA_COMPONENTS = 50
METHODS = ["PCA + SVM (RBF)", "k-nearest neighbours", "logistic regression"]


def _require_sklearn():
    try:
        import sklearn
    except ImportError:
        raise UsageError(
            "--classical needs scikit-learn: pip install 'digitnet[classical]'"
        ) from None
    return sklearn


def measure_classical(
    data_dir: str | None,
    limit_train: int | None,
    dest: Path,
    methods: list[str] | None = None,
    threads: int | None = None,
) -> list[dict[str, Any]]:
    """Fit each method once, evaluate on train and test, write ``dest/classical.json``."""
    sklearn = _require_sklearn()
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import SVC

    from ..data.mnist import load_mnist, resolve_data_dir

    d = resolve_data_dir(data_dir)
    xtr, ytr = load_mnist(d, "train")
    xte, yte = load_mnist(d, "test")
    if limit_train is not None:
        xtr, ytr = xtr[:limit_train], ytr[:limit_train]
    xtr = xtr.reshape(len(xtr), -1).astype(np.float32) / 255.0
    xte = xte.reshape(len(xte), -1).astype(np.float32) / 255.0
    pca = PCA_COMPONENTS
    makers = {
        "PCA + SVM (RBF)": (
            lambda: make_pipeline(
                PCA(pca, random_state=0), SVC(kernel="rbf", C=10.0, gamma="scale")
            ),
            f"PCA {pca} + SVC(rbf, C=10, gamma=scale)",
        ),
        "k-nearest neighbours": (
            lambda: make_pipeline(PCA(pca, random_state=0), KNeighborsClassifier(3)),
            f"PCA {pca} + 3-NN (Euclidean)",
        ),
        "logistic regression": (
            lambda: LogisticRegression(C=0.1, max_iter=300),
            "multinomial logistic regression, C=0.1, lbfgs, 784 pixels",
        ),
    }
    chosen = methods or METHODS
    rows = []
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        for name in chosen:
            make, recipe = makers[name]
            clf = make()
            t0 = time.perf_counter()
            clf.fit(xtr, ytr)
            fit_s = time.perf_counter() - t0
            rows.append(
                {
                    "model": name,
                    "recipe": recipe,
                    "train_images": len(ytr),
                    "test_images": len(yte),
                    "test_accuracy": float((clf.predict(xte) == yte).mean()),
                    "train_accuracy": float((clf.predict(xtr) == ytr).mean()),
                    "fit_seconds": round(fit_s, 2),
                    "source": f"measured here with scikit-learn {sklearn.__version__}",
                }
            )
    write_json(dest / "classical.json", {"rows": rows})
    return rows
