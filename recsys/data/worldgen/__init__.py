"""The built-in world's generator, in parts: how items look and read (:mod:`.items`) and how people, outfits and
dialogues are drawn (:mod:`.people`). :func:`recsys.data.demo_world.generate_world` runs them in order and
:func:`recsys.data.demo_world.build_demo_catalog` writes the result; the truth they draw from is
:mod:`recsys.data.truth`.
"""
