"""Item x item cosine neighbours, computed a block of items at a time."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from storelens.recommend import sources
from storelens.recommend.sources import top_n


def _whole_product(vectors: sp.csr_matrix, neighbours: int) -> sp.csr_matrix:
    """The definition, all at once: fine for a small catalogue only."""
    norms = np.sqrt(np.asarray(vectors.multiply(vectors).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    sim = sp.csr_matrix((sp.diags(1.0 / norms) @ vectors) @ (sp.diags(1.0 / norms) @ vectors).T)
    sim.setdiag(0.0)
    sim.eliminate_zeros()
    return top_n(sim, neighbours)


@pytest.mark.parametrize("block", [1, 7, 40, 10_000])
def test_blocks_give_the_whole_products_neighbours(
    monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    rng = np.random.default_rng(5)
    # 40 items, 12 tokens; token 0 ("brand: national") on every other item links half
    # the catalogue, the way a real product table's common attributes do.
    vectors = sp.random(40, 12, density=0.2, format="lil", random_state=rng)
    vectors[::2, 0] = 1.0
    vectors[3] = 0.0  # an item with no attributes has no neighbours
    vectors = sp.csr_matrix(vectors)
    monkeypatch.setattr(sources, "_SIMILARITY_BLOCK", block * 40)  # `block` items a block
    got = sources._cosine_neighbours(vectors, 5)
    want = _whole_product(vectors, 5)
    assert got.shape == (40, 40)
    assert (got != want).nnz == 0
    assert got.diagonal().max() == 0.0  # never its own neighbour
    assert got[3].nnz == 0
    assert np.diff(got.indptr).max() == 5
