"""What every Facet package shares, with no Facet import of its own: the error type
(:mod:`core.errors`), the label set (:mod:`core.labels`), and the file formats — image and
label-map I/O (:mod:`core.imageio`) and the CelebAMask-HQ layout (:mod:`core.celebamask`).
numpy and Pillow only: ``db`` and ``model`` both build on it. See docs/ARCHITECTURE.md.
"""
