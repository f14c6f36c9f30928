"""The dialogue task (Stylist chat): FASCODE-style coordi-set recommendation from a conversation.

- :mod:`.models` registers the dialogue models (:class:`recsys.models.dialogue.DialogueCoordiRecommender`
  configurations) and the untrained rows of the report;
- :mod:`.messages` turns chat turns into dialogue vectors and checks a user's message;
- :mod:`.data` splits a catalog's dialogues, fits the models the store saves, and finds the compatibility scorer;
- :mod:`.protocol` evaluates them with FASCODE's weighted Kendall's tau;
- :mod:`.service` is what the Stylist chat page calls (:class:`~.service.StylistService`).

Kim et al., "FASCODE: Fashion Coordination Dataset and Dialogue-based Coordi-set Recommendation" (2021).
"""
