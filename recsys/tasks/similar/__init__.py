"""Similar items: the nearest neighbours of a catalog item or an uploaded photo in the image-embedding space.

``models`` registers the model and the report's rows, ``data`` holds the query sample and the store's
``fit``/``inputs``, ``protocol`` judges neighbours by category and look, and ``service`` is what the page calls.
"""
