"""For you: personalized ranking from interactions and item images (BPR, VBPR, DVBPR, VECF), with explanations.

- :mod:`.models` registers the models (``vbpr-mm``, ``vecf``, ``vbpr``, ``dvbpr-imagenet``, ``dvbpr-ae``,
  ``bpr``) with their settings, and the report's rows ``vbpr-attributes``, ``random``, ``popularity``, ``oracle``;
- :mod:`.data` the leave-one-out split, each model's side inputs, and ``fit`` / ``inputs`` for the model store;
- :mod:`.features` the side inputs that are not artifacts (review embeddings, the conv autoencoder and its codes,
  one-hot attributes), cached in the catalog;
- :mod:`.protocol` ``evaluate``: sampled AUC, NDCG, HR, F1, Recall, warm and cold-start, the pointing game;
- :mod:`.tune` validation-only hyper-parameter sweeps (``scripts/tune.py``);
- :mod:`.service` ``PersonalService``, what the For you page calls.
"""
