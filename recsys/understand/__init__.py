"""Understanding what people type: a message, caption or search read into the catalog's own vocabulary.

:class:`Vocabulary` (the catalog's words), :func:`understand` (a text to an :class:`Understanding` of
:class:`Constraint` s) and :mod:`recsys.understand.apply` (constraints to item masks, rankings and the sentences a
request that cannot be met gets). DESIGN section 14.
"""

from recsys.understand.parse import Constraint, Understanding, understand
from recsys.understand.vocabulary import Vocabulary, tokens

__all__ = ["Constraint", "Understanding", "Vocabulary", "tokens", "understand"]
