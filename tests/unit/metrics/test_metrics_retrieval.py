"""Retrieval metrics on hand-made similarity matrices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from a2v.errors import InputError
from a2v.metrics import cosine_similarity_matrix, median_rank, recall_at_k, retrieval_ranks


def test_cosine_matrix_against_pairwise():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 6, generator=g), torch.randn(5, 6, generator=g)
    sim = cosine_similarity_matrix(a, b)
    assert sim.shape == (4, 5)
    ref = torch.nn.functional.cosine_similarity(a[:, None, :].double(), b[None, :, :].double(), dim=-1)
    torch.testing.assert_close(sim, ref)


def test_ranks_and_recall_hand_made():
    sim = np.array(
        [
            [0.9, 0.1, 0.2, 0.0],  # correct (0) best -> rank 1
            [0.8, 0.5, 0.1, 0.0],  # correct (1) second -> rank 2
            [0.3, 0.3, 0.3, 0.3],  # all tied -> pessimistic rank 4
            [0.5, 0.6, 0.7, 0.1],  # correct (3) worst -> rank 4
        ]
    )
    np.testing.assert_array_equal(retrieval_ranks(sim).numpy(), [1, 2, 4, 4])
    assert recall_at_k(sim, ks=(1, 2, 4)) == {1: 0.25, 2: 0.5, 4: 1.0}
    assert median_rank(sim) == pytest.approx(3.0)


def test_ties_do_not_depend_on_column_order():
    sim = torch.tensor([[0.5, 0.5, 0.2]])
    r0 = retrieval_ranks(sim, targets=[0])
    r1 = retrieval_ranks(sim[:, [1, 0, 2]], targets=[1])  # same scores, columns swapped
    assert int(r0) == int(r1) == 2


def test_explicit_targets_and_rectangular():
    sim = torch.tensor([[0.1, 0.9, 0.3], [0.7, 0.2, 0.4]])  # 2 audio queries, 3 images
    np.testing.assert_array_equal(retrieval_ranks(sim, targets=[1, 2]).numpy(), [1, 2])
    assert recall_at_k(sim, ks=(1,), targets=[1, 2]) == {1: 0.5}


def test_bad_inputs():
    with pytest.raises(InputError, match="N <= M"):
        retrieval_ranks(torch.zeros(3, 2))
    with pytest.raises(InputError, match="index the 2 candidates"):
        retrieval_ranks(torch.zeros(2, 2), targets=[0, 5])
    with pytest.raises(InputError, match="NaN"):
        retrieval_ranks(torch.tensor([[float("nan"), 0.0], [0.0, 1.0]]))
    with pytest.raises(InputError, match="K must be"):
        recall_at_k(torch.eye(2), ks=(0,))
