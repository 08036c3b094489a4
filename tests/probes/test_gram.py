"""The block-triangular cross products against a plain matrix product."""

import pytest
import torch

from variability.probes.gram import Gram


@pytest.mark.parametrize("units", [1, 10, 64, 130, 256])
def test_lower_triangle_is_the_sum_of_products_over_batches(units):
    generator = torch.Generator().manual_seed(units)
    shape = {"generator": generator, "dtype": torch.float64}
    batches = [torch.randn(rows, units, **shape) for rows in (7, 50)]
    gram = Gram()
    for m in batches:
        gram.add(m)
    expected = sum(m.T @ m for m in batches)
    assert torch.allclose(gram.buffer.tril(), expected.tril(), rtol=1e-12, atol=1e-12)
    total = torch.zeros(units, units, dtype=torch.float64)
    gram.fold_into(total)
    assert torch.allclose(total.tril(), expected.tril(), rtol=1e-12, atol=1e-12)
    assert not gram.buffer.any()  # folding starts the buffer again at 0
