"""Hooks for the worker processes of ``tests/worker/test_faults.py`` (this folder and the
repository root on ``PYTHONPATH``; Python imports ``sitecustomize`` as it starts), active with
``FACET_TEST_HOOKS=1``, each applied when its module is first imported (so a worker that never
loads SAM never pays for it):

* SAM ``vit_b`` is built as the tiny random-weight SAM of ``tests/model/tiny_sam.py`` (the
  worker takes its model type from ``FACET_SAM_MODEL``, which accepts the official names only);
* ``FACET_TEST_SLOW=predict,embed`` (either or both): the first pre-annotation
  (``Predictor.predict_with_uncertainty``) and the first SAM embedding
  (``SamModel.compute_embedding``) among all worker processes claim a file named ``predict`` or
  ``embed`` in ``FACET_TEST_MARKS`` and then sleep ``FACET_TEST_SLOW_S`` seconds; later ones
  run at full speed. A test kills the worker once the files exist: each of those tasks is
  then running, deterministically.
"""
import os
import sys


def _slowed(fn, what):
    import time
    from pathlib import Path

    marks = Path(os.environ["FACET_TEST_MARKS"])
    seconds = float(os.environ.get("FACET_TEST_SLOW_S", "60"))

    def run(*args, **kwargs):
        marks.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(marks / what, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return fn(*args, **kwargs)  # not the first one
        time.sleep(seconds)
        return fn(*args, **kwargs)
    return run


def _tiny_vit_b(module):
    def build(checkpoint=None):
        from tests.model.tiny_sam import build_tiny_sam
        return build_tiny_sam(checkpoint)
    module.sam_model_registry["vit_b"] = build


def _slow_predictions(module):
    module.Predictor.predict_with_uncertainty = _slowed(
        module.Predictor.predict_with_uncertainty, "predict")


def _slow_embeddings(module):
    module.SamModel.compute_embedding = _slowed(module.SamModel.compute_embedding, "embed")


class _PatchOnImport:
    """A meta path finder that runs ``patches[name](module)`` right after ``name`` is loaded."""

    def __init__(self, patches):
        self.patches = patches

    def find_spec(self, name, path, target=None):
        if name not in self.patches:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                patch, load = self.patches.pop(name), spec.loader.exec_module

                def exec_module(module):
                    load(module)
                    patch(module)
                spec.loader.exec_module = exec_module
                return spec
        return None


if os.environ.get("FACET_TEST_HOOKS") == "1":
    _patches = {"segment_anything.build_sam": _tiny_vit_b}
    _slow = os.environ.get("FACET_TEST_SLOW", "").split(",")
    if "predict" in _slow:
        _patches["model.inference"] = _slow_predictions
    if "embed" in _slow:
        _patches["model.sam"] = _slow_embeddings
    sys.meta_path.insert(0, _PatchOnImport(_patches))
