"""Complete the look: learned compatibility of items from different slots, and outfits built with it.

- :mod:`.models` registers the models (``triplet``, ``type-aware``) and the report's untrained rows;
- :mod:`.data` the outfit split, the item features, the evaluation questions, and ``fit`` / ``inputs`` for the
  model store;
- :mod:`.protocol` ``evaluate``: triplet accuracy, Polyvore FITB and outfit AUC;
- :mod:`.builder` assembles whole outfits around a query with a fitted model;
- :mod:`.service` ``OutfitService``, what the Complete-the-look page calls.
"""
