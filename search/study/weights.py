"""Class weights: the sample weights ``--class-weight balanced`` gives the rows a network trains and is judged on.

Why a module of its own: a trial's folds, a finalist run and the final networks
all train with the same weights, and scikit-learn's rule is the one users know
(``compute_sample_weight("balanced", y)``: n_samples / (n_classes * count of the
row's class)), so it is asked here, once. The validation rows are weighted with
the training rows' class weights, so that pruning and the selection rule judge
the validation loss the network was trained to lower; accuracy and the metrics
stay unweighted.
"""

from __future__ import annotations

import numpy as np

__all__ = ["sample_weights"]


def sample_weights(
    class_weight: str | None, y_train: np.ndarray, y_val: np.ndarray | None = None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(training weights (n_train,), validation weights (n_val,))``; ``(None, None)`` unless ``"balanced"``."""
    if class_weight != "balanced":
        return None, None
    from sklearn.utils.class_weight import compute_sample_weight  # only a balanced study pays for the import

    w_train = compute_sample_weight("balanced", y_train)
    if y_val is None:
        return w_train, None
    classes, first = np.unique(y_train, return_index=True)
    per_class = np.ones(int(max(classes.max(), np.max(y_val, initial=0))) + 1)
    per_class[classes] = w_train[first]  # each class's weight, as compute_sample_weight gave its rows
    return w_train, per_class[y_val]
