"""Sparse helpers: the row-sum product used by the quantizers' decode, against a gather-and-sum."""
import pytest
import torch

from workbench.core.sparse import _gather_sum, row_sums


def test_row_sums_matches_gather_and_its_gradient():
    torch.manual_seed(0)
    table = torch.randn(50, 6, dtype=torch.float64, requires_grad=True)
    ids = torch.randint(0, 50, (40, 3))
    ids[0] = torch.tensor([7, 7, 7])  # a row chosen several times by one item
    ids[1:5] = 7                      # and by several items
    weights = torch.randn(40, 6, dtype=torch.float64)
    out = row_sums(table, ids)
    ref = table[ids].sum(1)
    assert torch.allclose(out, ref)
    gathered = _gather_sum(table, ids)  # the GPU path's arithmetic, checked here on the CPU
    assert torch.allclose(gathered, ref)
    (grad,) = torch.autograd.grad((out * weights).sum(), table)
    (ref_grad,) = torch.autograd.grad((ref * weights).sum(), table)
    assert torch.allclose(grad, ref_grad)
    assert torch.allclose(torch.autograd.grad((gathered * weights).sum(), table)[0], ref_grad)
    assert torch.allclose(grad[7], 3 * weights[0] + weights[1:5].sum(0) * 3 + (weights[5:] * (ids[5:] == 7)
                                                                                 .sum(1, keepdim=True)).sum(0))


def test_row_sums_rejects_out_of_range_ids_and_handles_empty():
    table = torch.randn(5, 2)
    with pytest.raises(IndexError, match=r"\[0, 5\)"):
        row_sums(table, torch.tensor([[0, 5]]))
    with pytest.raises(IndexError):
        row_sums(table, torch.tensor([[-1, 0]]))
    with pytest.raises(ValueError, match="integer"):
        row_sums(table, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="integer"):
        row_sums(table, torch.zeros(2, 2, dtype=torch.bool))
    assert row_sums(table, torch.zeros(3, 0, dtype=torch.long)).shape == (3, 2)
    assert torch.equal(row_sums(table, torch.zeros(3, 0, dtype=torch.long)), torch.zeros(3, 2))


def test_row_sums_with_many_rows():
    """Past 2^15 table rows the backward's ordering falls back from numpy's int16 radix sort to torch.sort."""
    torch.manual_seed(1)
    table = torch.randn(40_000, 3, dtype=torch.float64, requires_grad=True)
    ids = torch.randint(0, 40_000, (500, 4))
    ids[:, 0] = 39_999  # keys above the int16 range
    weights = torch.randn(500, 3, dtype=torch.float64)
    (grad,) = torch.autograd.grad((row_sums(table, ids) * weights).sum(), table)
    (ref,) = torch.autograd.grad((table[ids].sum(1) * weights).sum(), table)
    assert torch.allclose(grad, ref)
