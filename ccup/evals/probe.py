"""Linear-probe leakage: zero-shot forget accuracy says the class is no longer predicted, not that
it is gone. A logistic-regression probe asks whether the forget classes are still linearly decodable
from the image embeddings."""
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ccup.datasets import per_class
from ccup.errors import UserError
from ccup.features import FeaturesOf
from ccup.metrics import accuracy
from ccup.task import UnlearnTask
from ccup.zeroshot import embeddings


class LinearProbe:
    """Probes fit on the image embeddings of `per_class` train images of every class and scored on
    `test_per_class` test images of every class (fixed draws with `seed`; None: all), for the
    unlearned model and (`_before`) the original:

    - `leak/probe_auroc`, `leak/probe_acc`: a binary probe, forget classes against the rest; its
      AUROC, and its balanced accuracy in percent (the mean of its recall on the forget and on the
      other images), so that both read 0.5 / 50 % when nothing of the class is left to decode and 1
      / 100 % when it is fully decodable;
    - `retain/probe_acc`: a multiclass probe over the retained classes alone, its accuracy in
      percent on their test images: how much of the retained classes' information the method kept,
      read beside the leakage.
    """

    columns = ("leak/probe_auroc", "leak/probe_acc", "retain/probe_acc")

    def __init__(self, per_class: int, test_per_class: int | None, seed: int, C: float):
        if not (per_class >= 1 and (test_per_class is None or test_per_class >= 1)):
            raise UserError("eval.probe.per_class and test_per_class must be at least 1, got "
                            f"{per_class} and {test_per_class}")
        if not C > 0:
            raise UserError(f"eval.probe.C must be positive, got {C}")
        self.per_class = per_class
        self.test_per_class = test_per_class
        self.seed = seed
        self.C = C

    def __call__(self, features: FeaturesOf, original: torch.nn.Module, unlearned: torch.nn.Module,
                 task: UnlearnTask, test_set) -> dict:
        if task.load_train is None:
            raise UserError("eval=probe fits its probes on the dataset's train split, which this "
                            "job has none of")
        classes = range(len(task.classnames))
        train = per_class(task.load_train(), classes, self.per_class, self.seed)
        test = per_class(test_set, classes, self.test_per_class, self.seed)
        forget = torch.tensor(task.forget_idx)
        metrics = {}
        for suffix, model in [("", unlearned), ("_before", original)]:
            (x_train, train_labels), (x_test, test_labels) = (features(model, train),
                                                              features(model, test))
            x_train, x_test = embeddings(model, x_train).cpu(), embeddings(model, x_test).cpu()
            auroc, balanced = forget_probe(x_train, torch.isin(train_labels, forget), x_test,
                                           torch.isin(test_labels, forget), self.C)
            retain_train, retain_test = (~torch.isin(train_labels, forget),
                                         ~torch.isin(test_labels, forget))
            metrics |= {f"leak/probe_auroc{suffix}": auroc, f"leak/probe_acc{suffix}": balanced,
                        f"retain/probe_acc{suffix}": class_probe(x_train[retain_train],
                                                                 train_labels[retain_train],
                                                                 x_test[retain_test],
                                                                 test_labels[retain_test], self.C)}
        return metrics


def probe(C: float) -> object:
    """A linear probe: standardised inputs, L2-regularised logistic regression (strength 1/C),
    classes weighted inversely to their frequency, so a rare forget class is not ignored."""
    return make_pipeline(StandardScaler(),
                         LogisticRegression(C=C, class_weight="balanced", max_iter=2000))


def forget_probe(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor,
                 y_test: torch.Tensor, C: float) -> tuple[float, float]:
    """(AUROC, balanced accuracy in percent) on the test set of a binary probe fit on (N, d)
    embeddings, y True for the forget classes."""
    fitted = fit(probe(C), x_train, y_train)
    x_test, y_test = to_numpy(x_test), to_numpy(y_test)
    return (float(roc_auc_score(y_test, fitted.decision_function(x_test))),
            100 * float(balanced_accuracy_score(y_test, fitted.predict(x_test))))


def class_probe(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor,
                y_test: torch.Tensor, C: float) -> float:
    """Test accuracy in percent of a multiclass probe fit on (N, d) embeddings and their class
    labels; NaN with fewer than two classes, where there is nothing to tell apart."""
    if len(y_train.unique()) < 2:
        return float("nan")
    fitted = fit(probe(C), x_train, y_train)
    return accuracy(torch.from_numpy(fitted.predict(to_numpy(x_test))), y_test)


def fit(model, x: torch.Tensor, y: torch.Tensor):
    # One BLAS thread: the matrices are small (N x d), and threads on shared cores cost more than
    # they save (15x slower fits measured on 2 busy cores).
    with threadpool_limits(1):
        return model.fit(to_numpy(x), to_numpy(y))


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.double().numpy() if tensor.is_floating_point() else tensor.numpy()
