"""Bring your own face parser: a TorchScript or ONNX model with its own class order, wrapped so
that it answers like :class:`model.net.FaceParser` and saved as a self-contained checkpoint.

``ForeignParser(spec, data)`` takes ``B x 3 x H x W`` float RGB in [0, 1] (as every Facet
parser), resizes it to the foreign model's input size, normalises it with the spec's mean and
std, runs the foreign model (its first output when it returns a tuple, list or dict), maps its
channels to Facet's class order (:data:`core.labels.CELEBAMASK`) and resizes the logits back:
``{"logits": B x 19 x H x W}``. Facet classes the foreign model lacks get
:data:`ABSENT_LOGIT`; several foreign channels that mean one Facet class (unknown names map to
background) are merged by ``logsumexp``, so their probabilities add up.

On disk (:func:`save_foreign`) it is a torch file of format ``facet-foreign`` holding the
foreign model's bytes (a uint8 tensor), the :class:`ForeignSpec` and Facet's label names:
copying the data dir copies the model. :func:`model.checkpoint.load_checkpoint` recognises it
(``weights_only=True``: nothing is unpickled) and returns a :class:`Checkpoint` whose ``model``
is a ``ForeignParser``, whose ``config`` is a :class:`ParserConfig` that only means its
``input_size`` (the foreign input size rounded up to a multiple of 32: the size Facet's
:class:`model.inference.Predictor` feeds; backbone and widths are defaults that describe
nothing) and ``num_classes``, and whose ``meta["foreign"]`` is the spec.

A foreign parser can pre-annotate and can be the teacher of a training run; it cannot be the
starting point of one (Facet cannot copy a foreign architecture): the student starts fresh.
"""
from __future__ import annotations

import copy
import io
import math
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.errors import FacetError
from core.imageio import write_atomic
from core.labels import BISENET_ORDER, CELEBAMASK, CELEBAMASK_NAMES, FARL_ORDER
from model.net import ParserConfig

FORMAT = "facet-foreign"
VERSION = 1
KINDS: tuple[str, ...] = ("torchscript", "onnx")
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
ABSENT_LOGIT = -1.0e4
"""Logit of a Facet class the foreign model does not predict: probability 0 after a softmax,
finite so that distillation's KL term stays finite (and it fits float16 / bfloat16)."""
ONNX_THREADS = 2
"""Intra-op threads of an ONNX Runtime session (small and fixed: the worker runs several
processes, and torch's own threads are set at the process edge)."""

ORDERS: dict[str, tuple[str, ...]] = {
    "celebamask": CELEBAMASK_NAMES,
    # face-parsing.PyTorch (zllrunning, BiSeNet): prepropess_data.py numbers the CelebAMask-HQ
    # parts with ``enumerate(atts, 1)`` over skin, l_brow, r_brow, l_eye, r_eye, eye_g, l_ear,
    # r_ear, ear_r, nose, mouth, u_lip, l_lip, neck, neck_l, cloth, hair, hat; 0 = background.
    "bisenet": BISENET_ORDER,
    # FaRL via facer (FacePerceiver/facer, facer/face_parsing/farl.py at c329ec3,
    # pretrain_settings["celebm/448"]["label_names"]): background, neck, face, cloth, rr, lr,
    # rb, lb, re, le, nose, imouth, llip, ulip, hair, eyeg, hat, earr, neck_l; there the jit
    # model gets RGB in [0, 1] unnormalised (mean 0, std 1) and returns (logits, _).
    "farl": FARL_ORDER,
}
"""Known class orders (``--labels``); ``celebamask`` is Facet's own."""

ALIASES: dict[str, str] = {
    "face": "skin", "rr": "r_ear", "lr": "l_ear", "rb": "r_brow", "lb": "l_brow",
    "re": "r_eye", "le": "l_eye", "imouth": "mouth", "llip": "l_lip", "ulip": "u_lip",
    "eyeg": "eye_g", "glass": "eye_g", "earr": "ear_r", "neckl": "neck_l",
}
"""facer's short names, accepted in a names list for the Facet class they mean."""


def _triple(values: Any, what: str) -> tuple[float, float, float]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise FacetError(f"{what} must be three numbers, got {values!r}") from None
    if len(out) != 3 or not all(math.isfinite(v) for v in out):
        raise FacetError(f"{what} must be three finite numbers (R, G, B), got {values!r}")
    return out  # type: ignore[return-value]


def parse_triple(text: str, what: str) -> tuple[float, float, float]:
    """``"0.5,0.5,0.5"`` → ``(0.5, 0.5, 0.5)``; a :class:`FacetError` naming ``what``."""
    return _triple([t.strip() for t in str(text).split(",")], what)


def parse_label_order(text: str) -> str | tuple[str, ...]:
    """``--labels``: a known order (:data:`ORDERS`) or a comma-separated list of class names,
    one per output channel of the foreign model (Facet's names or :data:`ALIASES`; any other
    name maps to background)."""
    value = str(text).strip()
    if value.lower() in ORDERS:
        return value.lower()
    if "," not in value:
        raise FacetError(f"unknown label order {value!r}; give one of {', '.join(ORDERS)} or a "
                         "comma-separated list of class names, one per output channel")
    names = tuple(n.strip() for n in value.split(","))
    if any(not n for n in names):
        raise FacetError(f"empty class name in the label list {value!r}")
    return names


@dataclass(frozen=True)
class ForeignSpec:
    """How to run a foreign parser; JSON-serialisable (:meth:`to_dict`).

    Attributes:
        kind: ``"torchscript"`` or ``"onnx"``.
        file: the file name it came from (for people; the model's bytes travel beside it).
        label_order: a name in :data:`ORDERS`, or the class name of each output channel.
        input_size: side of the square input the foreign model takes, pixels.
        mean, std: per-channel normalisation of RGB in [0, 1] before the model
            (default ImageNet's; ``0,0,0`` / ``1,1,1`` for models that normalise inside).
    """

    kind: str
    file: str
    label_order: str | tuple[str, ...]
    input_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise FacetError(f"unknown parser kind {self.kind!r}; choose from {', '.join(KINDS)}")
        if isinstance(self.label_order, (list, tuple)):
            object.__setattr__(self, "label_order", tuple(str(n) for n in self.label_order))
            if not self.label_order:
                raise FacetError("the label list is empty")
        elif self.label_order not in ORDERS:
            raise FacetError(f"unknown label order {self.label_order!r}; give one of "
                             f"{', '.join(ORDERS)} or a list of class names")
        if not isinstance(self.input_size, int) or isinstance(self.input_size, bool) \
                or not 8 <= self.input_size <= 4096:
            raise FacetError(f"input size must be a whole number of pixels in 8..4096, "
                             f"got {self.input_size!r}")
        object.__setattr__(self, "mean", _triple(self.mean, "mean"))
        object.__setattr__(self, "std", _triple(self.std, "std"))
        if min(self.std) <= 0:
            raise FacetError(f"std must be positive, got {self.std}")

    @property
    def order_name(self) -> str:
        """``"bisenet"`` etc., or ``"custom"`` for a names list."""
        return self.label_order if isinstance(self.label_order, str) else "custom"

    def channel_names(self) -> tuple[str, ...]:
        """The names as given, one per output channel of the foreign model."""
        order = self.label_order
        return ORDERS[order] if isinstance(order, str) else order

    def class_names(self) -> tuple[str, ...]:
        """The Facet class of each output channel (aliases resolved, unknown → background)."""
        known = set(CELEBAMASK.names)
        return tuple(n if n in known else "background"
                     for n in (ALIASES.get(n, n) for n in self.channel_names()))

    def unknown_names(self) -> tuple[str, ...]:
        """Names of a names list that mean no Facet class (they count as background)."""
        known = set(CELEBAMASK.names)
        return tuple(n for n in self.channel_names() if n not in known and n not in ALIASES)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["label_order"] = self.label_order if isinstance(self.label_order, str) \
            else list(self.label_order)
        out["mean"], out["std"] = list(self.mean), list(self.std)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ForeignSpec":
        try:
            return cls(kind=data["kind"], file=str(data["file"]),
                       label_order=data["label_order"] if isinstance(data["label_order"], str)
                       else tuple(data["label_order"]),
                       input_size=int(data["input_size"]), mean=data["mean"], std=data["std"])
        except (KeyError, TypeError, ValueError) as err:
            raise FacetError(f"damaged foreign parser description ({err})") from None


def facet_config(spec: ForeignSpec) -> ParserConfig:
    """The :class:`ParserConfig` a foreign checkpoint carries: only ``input_size`` (the foreign
    size rounded up to a multiple of 32) and ``num_classes`` mean anything."""
    return ParserConfig(input_size=max(32, -(-spec.input_size // 32) * 32),
                        num_classes=CELEBAMASK.num_classes)


def detect_kind(data: bytes) -> str:
    """TorchScript archives are zip files; anything else is tried as ONNX (protobuf)."""
    if data[:4] == b"PK\x03\x04":
        return "torchscript"
    return "onnx"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _first_output(out: Any) -> Any:
    """A model's logits: the first element of a tuple or list, ``"logits"`` / ``"out"`` or the
    first value of a dict (recursively)."""
    while True:
        if isinstance(out, dict):
            if not out:
                return None
            out = out.get("logits", out.get("out", next(iter(out.values()))))
        elif isinstance(out, (list, tuple)):
            if not out:
                return None
            out = out[0]
        else:
            return out


class ForeignParser(nn.Module):
    """A foreign TorchScript or ONNX face parser that answers like a Facet parser (see the
    module docstring). ``config`` and ``labels`` as a :class:`FaceParser`'s; ``check`` runs a
    dummy forward pass (a :class:`FacetError` for a model that fails, or whose channels do not
    match the label order); ``keep_data``: keep the model's bytes in :attr:`data` (needed by
    :func:`save_foreign`, not to run it)."""

    def __init__(self, spec: ForeignSpec, data: bytes, check: bool = True,
                 keep_data: bool = True) -> None:
        super().__init__()
        self.spec = spec
        self.data: bytes | None = bytes(data)
        self.config = facet_config(spec)
        self.labels = CELEBAMASK
        names = spec.class_names()
        self.groups: list[list[int]] = [[i for i, n in enumerate(names) if n == facet]
                                        for facet in CELEBAMASK.names]
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)
        self._session = None
        if spec.kind == "torchscript":
            self.net = self._load_torchscript()
        else:
            self._session = self._load_onnx()
        if check:
            self.check()
        if not keep_data:
            self.data = None  # the loaded model holds its own copy

    # --- loading -------------------------------------------------------------------------
    def _load_torchscript(self) -> nn.Module:
        try:
            with warnings.catch_warnings():  # torch 2.9+: "torch.jit.load is deprecated"
                warnings.simplefilter("ignore", FutureWarning)
                net = torch.jit.load(io.BytesIO(self.data), map_location="cpu")
        except Exception as err:  # torch raises RuntimeError, ValueError, … for a bad archive
            raise FacetError(f"{self.spec.file} is not a TorchScript module ({_first_line(err)}); "
                             "save it with torch.jit.script(model).save(...) or "
                             "torch.jit.trace, or export it to ONNX") from None
        for p in net.parameters():
            p.requires_grad_(False)
        return net.eval()

    def _load_onnx(self):
        try:
            import onnxruntime as ort
        except ImportError:  # pragma: no cover - a dependency
            raise FacetError("ONNX parsers need onnxruntime: pip install onnxruntime") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = min(ONNX_THREADS, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(self.data, options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime's own exception types
            raise FacetError(f"{self.spec.file} is not a readable ONNX model "
                             f"({_first_line(err)})") from None
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise FacetError(f"{self.spec.file}: an ONNX parser must take one input (an image "
                             f"batch), this one takes {len(inputs)}")
        shape = list(inputs[0].shape)
        if len(shape) != 4:
            raise FacetError(f"{self.spec.file}: the ONNX input must be B x 3 x H x W, "
                             f"got shape {shape}")
        if isinstance(shape[1], int) and shape[1] != 3:
            raise FacetError(f"{self.spec.file}: the ONNX input has {shape[1]} channels, not 3")
        fixed = [d for d in shape[2:] if isinstance(d, int)]
        if len(fixed) == 2 and fixed[0] != fixed[1]:
            raise FacetError(f"{self.spec.file} takes {shape[2]} x {shape[3]} images; only "
                             "square inputs are supported")
        if any(d != self.spec.input_size for d in fixed):
            raise FacetError(f"{self.spec.file} takes {shape[2]} x {shape[3]} images; give "
                             f"--input-size {fixed[0]}")
        if inputs[0].type not in ("tensor(float)", "tensor(float16)"):
            raise FacetError(f"{self.spec.file}: the ONNX input is {inputs[0].type}, not float")
        self._onnx_input = inputs[0].name
        self._onnx_half = inputs[0].type == "tensor(float16)"
        self._onnx_batch = shape[0] if isinstance(shape[0], int) else None
        return session

    def __deepcopy__(self, memo: dict) -> "ForeignParser":
        """A copy (e.g. the frozen teacher of a run); an ONNX Runtime session is immutable and
        thread-safe, so the copy shares it."""
        if self._session is not None:
            memo[id(self._session)] = self._session
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            new.__dict__[key] = copy.deepcopy(value, memo)
        return new

    # --- running -------------------------------------------------------------------------
    @property
    def num_channels(self) -> int:
        """Output channels the label order names."""
        return len(self.spec.channel_names())

    def check(self) -> None:
        """One forward pass on a dummy image at the input size (in eval mode, on the CPU or
        where the model is); a :class:`FacetError` saying what is wrong."""
        size = self.spec.input_size
        device = self.mean.device
        with torch.inference_mode():
            out = self(torch.full((1, 3, size, size), 0.5, device=device))["logits"]
        if out.shape != (1, CELEBAMASK.num_classes, size, size):  # pragma: no cover - invariant
            raise FacetError(f"{self.spec.file}: unexpected output shape {tuple(out.shape)}")

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        """The foreign model on normalised ``x`` → its raw logits (``B x K x h x w``)."""
        if self._session is None:
            try:
                out = _first_output(self.net(x))
            except Exception as err:  # TorchScript raises plain RuntimeErrors
                raise FacetError(f"{self.spec.file} failed on a {x.shape[-1]} x {x.shape[-2]} "
                                 f"image: {_first_line(err)}") from None
        else:
            arr = x.detach().to("cpu", torch.float32).numpy()
            if self._onnx_half:
                arr = arr.astype("float16")
            try:
                if self._onnx_batch is not None and self._onnx_batch != arr.shape[0]:
                    if self._onnx_batch != 1:
                        raise FacetError(f"{self.spec.file} takes batches of exactly "
                                         f"{self._onnx_batch} images")
                    parts = [self._session.run(None, {self._onnx_input: arr[i:i + 1]})[0]
                             for i in range(arr.shape[0])]
                    result = np.concatenate(parts)
                else:
                    result = self._session.run(None, {self._onnx_input: arr})[0]
            except FacetError:
                raise
            except Exception as err:  # onnxruntime's own exception types
                raise FacetError(f"{self.spec.file} failed on a {x.shape[-1]} x {x.shape[-2]} "
                                 f"image: {_first_line(err)}") from None
            out = torch.from_numpy(result).to(x.device)
        if not isinstance(out, torch.Tensor) or out.ndim != 4 or out.shape[0] != x.shape[0]:
            desc = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise FacetError(f"{self.spec.file} must return B x C x H x W logits, got {desc}")
        if out.shape[1] != self.num_channels:
            raise FacetError(f"{self.spec.file} outputs {out.shape[1]} channels but the label "
                             f"order {self.spec.order_name!r} names {self.num_channels} classes")
        return out

    def _to_facet(self, out: torch.Tensor) -> torch.Tensor:
        """Foreign ``B x K x h x w`` logits → Facet's ``B x 19 x h x w``."""
        absent = None
        planes = []
        for group in self.groups:
            if len(group) == 1:
                planes.append(out[:, group[0]])
            elif group:
                planes.append(torch.logsumexp(out[:, group], dim=1))
            else:
                if absent is None:
                    absent = torch.full_like(out[:, 0], ABSENT_LOGIT)
                planes.append(absent)
        return torch.stack(planes, dim=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``B x 3 x H x W`` RGB in [0, 1] → ``{"logits": B x 19 x H x W}`` in Facet's order."""
        size = tuple(x.shape[-2:])
        side = self.spec.input_size
        inp = x.float()
        if size != (side, side):
            inp = F.interpolate(inp, size=(side, side), mode="bilinear", align_corners=False)
        inp = ((inp - self.mean) / self.std).contiguous()
        logits = self._to_facet(self._run(inp).float())
        if tuple(logits.shape[-2:]) != size:
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return {"logits": logits}


def is_foreign(model: Any) -> bool:
    return isinstance(model, ForeignParser)


def read_foreign(path: str | os.PathLike, label_order: str | tuple[str, ...],
                 input_size: int | None = None, mean: Any = IMAGENET_MEAN,
                 std: Any = IMAGENET_STD) -> ForeignParser:
    """Read a TorchScript or ONNX file and check it (a dummy forward pass): the parser, ready
    for :func:`save_foreign`. ``input_size`` ``None``: the ONNX model's fixed input size (an
    error when it has none)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FacetError(f"parser file not found: {path}")
    data = path.read_bytes()
    if not data:
        raise FacetError(f"{path} is empty")
    kind = detect_kind(data)
    if input_size is None:
        input_size = _onnx_fixed_size(data, path.name) if kind == "onnx" else None
        if input_size is None:
            raise FacetError(f"give --input-size: {path.name} does not say which image size "
                             "it takes")
    spec = ForeignSpec(kind, path.name, label_order, input_size, mean, std)
    return ForeignParser(spec, data)


def _onnx_fixed_size(data: bytes, name: str) -> int | None:
    """The square input side an ONNX model fixes, or ``None``."""
    import onnxruntime as ort

    try:
        shape = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).get_inputs()[0].shape
    except Exception as err:  # onnxruntime's own exception types
        raise FacetError(f"{name} is not a readable ONNX model ({_first_line(err)})") from None
    h, w = (list(shape) + [None] * 4)[2:4]
    return h if isinstance(h, int) and h == w else None


def save_foreign(path: str | os.PathLike, parser: ForeignParser,
                 meta: dict[str, Any] | None = None) -> None:
    """Write ``parser`` (its model's bytes and spec) as a ``facet-foreign`` checkpoint,
    atomically. ``meta`` must be JSON-serialisable."""
    import json

    if parser.data is None:
        raise ValueError("this ForeignParser was built without keeping its bytes")
    try:
        meta = json.loads(json.dumps(meta or {}))
    except (TypeError, ValueError) as err:
        raise ValueError(f"checkpoint meta must be JSON-serialisable: {err}") from None
    payload = {"format": FORMAT, "version": VERSION, "spec": parser.spec.to_dict(),
               "labels": list(CELEBAMASK.names), "config": parser.config.to_dict(),
               "meta": meta, "model": torch.frombuffer(bytearray(parser.data), dtype=torch.uint8)}
    buf = io.BytesIO()
    torch.save(payload, buf)
    write_atomic(path, buf.getvalue())


def load_foreign(payload: dict[str, Any], path: str | os.PathLike,
                 device: str | torch.device = "cpu"):
    """The :class:`model.checkpoint.Checkpoint` of a ``facet-foreign`` payload (already read
    with ``weights_only=True`` by :func:`model.checkpoint.load_checkpoint`)."""
    from model.checkpoint import Checkpoint

    if payload.get("version") != VERSION:
        raise FacetError(f"{path}: foreign parser version {payload.get('version')} is not "
                         "supported")
    blob = payload.get("model")
    if not isinstance(blob, torch.Tensor) or blob.dtype != torch.uint8 or not isinstance(
            payload.get("spec"), dict):
        raise FacetError(f"{path}: damaged foreign parser checkpoint")
    spec = ForeignSpec.from_dict(payload["spec"])
    model = ForeignParser(spec, blob.numpy().tobytes(), keep_data=False)
    model.to(device).eval()
    meta = {**dict(payload.get("meta") or {}), "foreign": spec.to_dict()}
    return Checkpoint(model, model.config, CELEBAMASK, meta)
