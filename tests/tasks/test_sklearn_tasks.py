"""The scikit-learn tasks: sizes, splits, standardisation with training statistics, metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import datasets

from variability.tasks import TaskError, accuracy, load_task, r2_score, task_names

EXPECTED = {
    # name: (rows, d_in, d_out, kind, loss, metric)
    "digits": (1_797, 64, 10, "classification", "cross_entropy", "accuracy"),
    "diabetes": (442, 10, 1, "regression", "mse", "r2"),
    "breast_cancer": (569, 30, 2, "classification", "cross_entropy", "accuracy"),
    "friedman1": (2_000, 10, 1, "regression", "mse", "r2"),
}


def test_registry_names():
    assert task_names() == ["checkerboard", "digits", "diabetes", "breast_cancer", "friedman1"]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_shapes_kinds_and_partition(name):
    rows, d_in, d_out, kind, loss, metric = EXPECTED[name]
    task = load_task(name, seed=0)
    assert (task.d_in, task.d_out, task.kind, task.loss, task.metric) == (
        d_in,
        d_out,
        kind,
        loss,
        metric,
    )
    sizes = task.sizes()
    assert sum(sizes.values()) == rows
    # 20% test; a quarter of the rest for validation (floor rounding): 60 / 20 / 20.
    assert sizes["test"] == int(0.2 * rows)
    assert sizes["val"] == int(0.25 * (rows - sizes["test"]))
    everything = torch.cat([task.indices[s] for s in ("train", "val", "test")])
    assert sorted(everything.tolist()) == list(range(rows))
    for split in ("train", "val", "test"):
        x, y = task.split(split)
        assert x.dtype == torch.float32 and x.shape == (sizes[split], d_in)
        if task.loss == "cross_entropy":
            assert y.dtype == torch.int64 and y.shape == (sizes[split],)
            assert y.min().item() >= 0 and y.max().item() < d_out
        else:
            assert y.dtype == torch.float32 and y.shape == (sizes[split], 1)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_inputs_standardised_with_training_statistics(name):
    task = load_task(name, seed=4)
    mean = task.x_train.double().mean(dim=0)
    std = task.x_train.double().std(dim=0, unbiased=False)
    assert mean.abs().max().item() < 1e-5
    varying = std > 0
    torch.testing.assert_close(std[varying], torch.ones_like(std[varying]), atol=1e-5, rtol=0)
    # The same affine map, with training statistics, applied to the other splits.
    raw = raw_features(name)
    for split in ("val", "test"):
        x = task.split(split)[0].double()
        rebuilt = (
            raw[task.indices[split].numpy()] - task.feature_mean.double().numpy()
        ) / task.feature_std.double().numpy()
        np.testing.assert_allclose(x.numpy(), rebuilt, atol=1e-5)
    # and not with statistics of those splits: their means are not exactly 0.
    assert task.x_test.double().mean(dim=0).abs().max().item() > 1e-3


def raw_features(name):
    if name == "digits":
        return datasets.load_digits().data
    if name == "diabetes":
        return datasets.load_diabetes(scaled=False).data
    if name == "breast_cancer":
        return datasets.load_breast_cancer().data
    return datasets.make_friedman1(n_samples=2_000, n_features=10, noise=1.0, random_state=0)[0]


def test_digits_blank_pixels_are_centred_not_divided_by_zero():
    task = load_task("digits")
    assert torch.isfinite(task.x_train).all() and torch.isfinite(task.x_test).all()
    assert (task.feature_std == 1.0).any()  # pixel 0 is always blank


@pytest.mark.parametrize("name", ["diabetes", "friedman1"])
def test_regression_targets_standardised(name):
    task = load_task(name, seed=1)
    assert task.y_train.mean().abs().item() < 1e-5
    assert task.y_train.double().std(unbiased=False).item() == pytest.approx(1.0, abs=1e-5)
    # Undoing it gives back the raw targets.
    raw = datasets.load_diabetes().target if name == "diabetes" else datasets.make_friedman1(
        n_samples=2_000, n_features=10, noise=1.0, random_state=0
    )[1]  # fmt: skip
    original = task.to_original_units(task.y_test).squeeze(1).double().numpy()
    np.testing.assert_allclose(original, raw[task.indices["test"].numpy()], rtol=1e-5)


@pytest.mark.parametrize("name", ["digits", "breast_cancer"])
def test_classification_splits_are_stratified(name):
    task = load_task(name, seed=2)
    overall = torch.bincount(torch.cat([task.y_train, task.y_val, task.y_test])).double()
    overall /= overall.sum()
    for split in ("train", "val", "test"):
        share = torch.bincount(task.split(split)[1], minlength=len(overall)).double()
        share /= share.sum()
        assert (share - overall).abs().max().item() < 0.02


@pytest.mark.parametrize("name", list(EXPECTED))
def test_seeded_splits(name):
    first, again, other = load_task(name, seed=5), load_task(name, seed=5), load_task(name, seed=6)
    assert torch.equal(first.x_test, again.x_test) and torch.equal(first.y_val, again.y_val)
    assert not torch.equal(first.indices["test"], other.indices["test"])


def test_friedman_options():
    task = load_task("friedman1", n_samples=500, noise=0.0)
    assert sum(task.sizes().values()) == 500
    assert task.options["noise"] == 0.0


def test_unknown_task_and_option():
    with pytest.raises(TaskError, match="unknown task 'mnist'; known: checkerboard, digits"):
        load_task("mnist")
    with pytest.raises(TaskError, match="no option noise"):
        load_task("digits", noise=1.0)
    with pytest.raises(TaskError, match="seed"):
        load_task("digits", seed=-2)


def test_accuracy_hand_values():
    # One output, thresholded at 0.5.
    assert (
        accuracy(
            torch.tensor([[0.2], [0.7], [0.51], [0.5]]), torch.tensor([[0.0], [1.0], [0.0], [0.0]])
        )
        == 0.75
    )
    # Several outputs: argmax against class indices.
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 4.0, 0.0]])
    assert accuracy(logits, torch.tensor([0, 2, 0])) == pytest.approx(2 / 3)


def test_r2_hand_values():
    y = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    assert r2_score(y, y) == 1.0
    assert r2_score(torch.full_like(y, 2.5), y) == 0.0
    # residuals 0.5, -0.5, 0.5, -0.5: 1 - 1 / 5
    assert r2_score(y + torch.tensor([[0.5], [-0.5], [0.5], [-0.5]]), y) == pytest.approx(0.8)


def test_task_score_and_loss():
    task = load_task("breast_cancer")
    logits = torch.nn.functional.one_hot(task.y_test, 2).float()
    assert task.score(logits, task.y_test) == 1.0
    assert isinstance(task.loss_fn(), torch.nn.CrossEntropyLoss)
    regression = load_task("diabetes")
    assert regression.score(regression.y_val, regression.y_val) == 1.0
    assert isinstance(regression.loss_fn(), torch.nn.MSELoss)


def test_evaluate_restores_mode_and_summary_is_json():
    import json

    task = load_task("digits")
    model = torch.nn.Linear(64, 10)
    model.train()
    value = task.evaluate(model, "val")
    assert 0.0 <= value <= 1.0 and model.training
    text = json.dumps(task.summary())
    assert '"digits"' in text and '"cross_entropy"' in text
    moved = task.to("cpu")
    assert torch.equal(moved.x_train, task.x_train)


def test_baselines_of_a_classification_and_a_regression():
    digits = load_task("digits", 0)
    majority = int(torch.bincount(digits.y_train).argmax())
    assert digits.baseline("test") == pytest.approx(
        float((digits.y_test == majority).double().mean())
    )
    diabetes = load_task("diabetes", 0)  # the training mean on unseen rows: R^2 just below 0
    assert -0.05 < diabetes.baseline("test") <= 0.0
