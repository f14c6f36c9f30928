"""BPR-MF: matrix factorization with item biases, trained with Bayesian personalized ranking.

The training loop, scoring, folding in new users and persistence are the pairwise rankers' shared base,
:class:`recsys.models.pairwise.PairwiseRanker`.
"""

from __future__ import annotations

from torch import nn

from recsys.models.pairwise import PairwiseModule, PairwiseRanker


class _BPRModule(PairwiseModule):
    def __init__(self, n_users: int, n_items: int, dim: int):
        super().__init__(n_users, dim)
        self.item = nn.Embedding(n_items, dim)
        self.item_bias = nn.Embedding(n_items, 1)
        nn.init.normal_(self.item.weight, std=0.1)
        nn.init.zeros_(self.item_bias.weight)

    def item_side(self, item_idx):
        return self.item(item_idx), self.item_bias(item_idx).squeeze(-1)


class BPR(PairwiseRanker):
    """BPR-MF: matrix factorization with item biases trained with Bayesian personalized ranking.

    ``x_ui = beta_i + gamma_u . gamma_i``.

    Parameters
    ----------
    n_factors : int
        Dimension of the user and item factors.
    n_epochs, batch_size, learning_rate, reg, bias_reg, random_state
        Training settings: Adam on the BPR loss with L2 regularization ``reg`` on the factors and ``bias_reg``
        on the item biases (default: ``reg``).

    References
    ----------
    S. Rendle, C. Freudenthaler, Z. Gantner, L. Schmidt-Thieme. BPR: Bayesian Personalized Ranking from
    Implicit Feedback. UAI 2009.
    """

    def __init__(self, *, n_factors: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.n_factors = n_factors

    def _build_module(self, n_users, n_items):
        return _BPRModule(n_users, n_items, self.n_factors)
