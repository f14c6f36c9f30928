"""Text-guided search (composed retrieval, FashionIQ): a reference image plus modification captions -> items.

- :mod:`.models`: the registered models (the demo-clip joint space, the baselines, image-difference, combiner);
- :mod:`.data`: caption splits, training inputs, and ``fit`` / ``inputs`` for :class:`recsys.store.ModelStore`;
- :mod:`.rankers`: the random and oracle rows of the report;
- :mod:`.protocol`: the FashionIQ protocol (``evaluate``);
- :mod:`.service`: :class:`~.service.SearchService`, what the Text-guided search page calls.
"""
