"""The checkerboard exactly as DEFINITIONS.md defines it, and its seeded splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from variability.tasks import TaskError, accuracy, checkerboard_labels, load_checkerboard, load_task


def label(i: int, j: int) -> int:
    """DEFINITIONS.md's rule, written out independently."""
    inside = 4 <= i <= 75 and 4 <= j <= 75
    return int(inside and ((i - 4) // 6 + (j - 4) // 6) % 2 == 1)


def test_labels_match_the_rule_everywhere():
    labels = checkerboard_labels()
    assert labels.shape == (81, 81)
    expected = np.array([[label(i, j) for j in range(81)] for i in range(81)])
    assert np.array_equal(labels, expected)


def test_counts():
    labels = checkerboard_labels()
    assert labels.size == 6_561
    assert labels.sum() == 2_592  # 72 of the 144 squares, 36 pixels each
    assert round(labels.mean(), 3) == 0.395


def test_hand_picked_points():
    labels = checkerboard_labels()
    assert labels[4, 4] == 0  # the first square is 0
    assert labels[4, 10] == 1 and labels[10, 4] == 1  # its neighbours are 1
    assert labels[9, 9] == 0 and labels[9, 10] == 1  # last pixel of square (0, 0), next square
    assert labels[75, 69] == 1  # square (11, 10): odd
    assert labels[75, 75] == 0  # square (11, 11): even
    assert labels[76, 69] == 0  # the high border starts at 76


def test_border_is_all_zeros():
    labels = checkerboard_labels()
    assert labels[:4, :].sum() == 0 and labels[:, :4].sum() == 0  # 4 pixels on the low side
    assert labels[76:, :].sum() == 0 and labels[:, 76:].sum() == 0  # 5 pixels on the high side
    assert labels[4:76, 4:76].sum() == 2_592  # every one lies inside


def test_squares_are_uniform_and_neighbours_differ():
    board = checkerboard_labels()[4:76, 4:76].reshape(12, 6, 12, 6)
    squares = board[:, 0, :, 0]
    # Each 6 x 6 square has a single label.
    assert np.array_equal(board, np.broadcast_to(squares[:, None, :, None], board.shape))
    # Side-by-side squares differ, along both axes.
    assert (squares[1:, :] != squares[:-1, :]).all()
    assert (squares[:, 1:] != squares[:, :-1]).all()
    assert squares[0, 0] == 0


def test_grid_order_and_coordinates():
    task = load_checkerboard()
    grid = task.grid
    assert grid.x.shape == (6_561, 2) and grid.shape == (81, 81)
    i, j = 17, 62
    k = i * 81 + j
    torch.testing.assert_close(grid.x[k], torch.tensor([-1 + i / 40, -1 + j / 40]))
    assert grid.x.min().item() == -1.0 and grid.x.max().item() == 1.0
    assert grid.y[k].item() == label(i, j)
    image = grid.image(grid.y)
    assert image.shape == (81, 81) and image[i, j].item() == label(i, j)
    assert np.array_equal(image.numpy().astype(int), checkerboard_labels())


def test_split_sizes_and_partition():
    task = load_checkerboard(seed=0)
    assert task.sizes() == {"train": 1_312, "val": 328, "test": 4_921}
    assert 1_312 + 328 == 1_640 == int(0.25 * 6_561)
    everything = torch.cat([task.indices[s] for s in ("train", "val", "test")])
    assert sorted(everything.tolist()) == list(range(6_561))


def test_split_rows_are_grid_rows():
    task = load_checkerboard(seed=3)
    for split in ("train", "val", "test"):
        x, y = task.split(split)
        index = task.indices[split]
        assert torch.equal(x, task.grid.x[index])
        assert torch.equal(y, task.grid.y[index].unsqueeze(1))
        assert x.dtype == torch.float32 and y.shape == (len(index), 1)


def test_seeded_splits():
    first, again, other = (
        load_checkerboard(seed=1),
        load_task("checkerboard", seed=1),
        load_checkerboard(seed=2),
    )
    assert torch.equal(first.indices["test"], again.indices["test"])
    assert torch.equal(first.indices["val"], again.indices["val"])
    assert not torch.equal(first.indices["test"], other.indices["test"])
    # A random quarter: both labels present in each split, in roughly the board's proportion.
    for split in ("train", "val", "test"):
        share = first.split(split)[1].mean().item()
        assert 0.3 < share < 0.5


def test_task_fields():
    task = load_checkerboard()
    assert (task.kind, task.loss, task.metric) == ("classification", "mse", "accuracy")
    assert (task.d_in, task.d_out, task.n_classes) == (2, 1, 2)
    assert task.options == {"train_fraction": 0.25, "val_fraction": 0.2}


def test_options():
    task = load_checkerboard(train_fraction=0.5, val_fraction=0.1)
    assert task.sizes() == {"train": 2_952, "val": 328, "test": 3_281}
    with pytest.raises(TaskError, match="strictly between 0 and 1"):
        load_checkerboard(train_fraction=1.5)


def test_the_han_papers_split_has_no_validation_set():
    """25% of the grid trains (1,640 points), 75% tests (4,921); nothing held out besides."""
    task = load_checkerboard(seed=3, val_fraction=0)
    assert task.sizes() == {"train": 1640, "val": 0, "test": 4921}
    assert not task.has_validation and load_checkerboard(seed=3).has_validation
    train, test = set(task.indices["train"].tolist()), set(task.indices["test"].tolist())
    assert not train & test and len(train | test) == 6561
    # the training part is the same rows as with a validation split, before that split is drawn
    with_val = load_checkerboard(seed=3)
    held = set(with_val.indices["train"].tolist()) | set(with_val.indices["val"].tolist())
    assert held == train


def test_duplicated_targets_have_identical_columns():
    task = load_checkerboard(seed=0, outputs=2)
    assert task.d_out == 2 and task.y_train.shape == (1312, 2)
    assert torch.equal(task.y_train[:, 0], task.y_train[:, 1])
    assert torch.equal(task.y_test[:, 0], load_checkerboard(seed=0).y_test[:, 0])


def test_duplicated_target_accuracy_thresholds_the_mean_of_the_two_outputs():
    targets = torch.tensor([[1.0, 1.0], [0.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    outputs = torch.tensor(
        [
            [0.9, 0.3],  # mean 0.6 > 0.5: class 1, right (one column alone would say 0)
            [0.2, 0.7],  # mean 0.45: class 0, right
            [0.4, 0.5],  # mean 0.45: class 0, wrong
            [0.8, 0.4],  # mean 0.6: class 1, wrong
        ]
    )
    assert accuracy(outputs, targets) == pytest.approx(0.5)
    task = load_checkerboard(seed=0, outputs=2)
    assert task.score(task.y_test * 0.8 + 0.1, task.y_test) == 1.0


@pytest.mark.parametrize("options", [{"val_fraction": -0.1}, {"val_fraction": 1.0}, {"outputs": 0}])
def test_bad_options_are_refused(options):
    with pytest.raises(TaskError):
        load_checkerboard(**options)


def test_the_baseline_is_the_majority_class_of_the_training_split():
    """What a model collapsed to a constant scores: the checkerboard's majority class (0, 60.2%
    of the test split), as the papers' 'accuracy' of a collapsed net."""
    task = load_task("checkerboard", 0)
    zeros = float((task.y_test == 0).double().mean())
    assert task.baseline("test") == pytest.approx(zeros) and round(zeros, 3) == 0.602
    constant = torch.full((len(task.y_test), 1), float(task.y_train.mean()))
    assert task.score(constant, task.y_test) == task.baseline("test")
    assert set(task.summary()["baseline"]) == {"val", "test"}
