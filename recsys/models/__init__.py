"""One module per method; each model has ``fit`` (returns self), ``score`` and ``save`` / ``load``."""
