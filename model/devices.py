"""Device, thread-count and mixed-precision choices, in one place."""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch

from core.errors import FacetError


def resolve_device(name: str | torch.device | None = None) -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``None``/``"auto"`` (CUDA when present).

    A :class:`FacetError` when CUDA is asked for and not available.
    """
    if isinstance(name, torch.device):
        name = str(name)
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise FacetError(f"--device {name} asked for, but CUDA is not available on this machine")
        try:
            device = torch.device(name)
        except RuntimeError as err:
            raise FacetError(f"bad device {name!r}: {err}") from None
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise FacetError(f"{name}: only {torch.cuda.device_count()} CUDA device(s) present")
        return device
    raise FacetError(f"unknown device {name!r}; use cpu or cuda")


def available_cores() -> int:
    """CPU cores this process may run on (affinity-aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """Intra-op threads for inference: every core we may use, at most 8 (beyond that the
    small model gains little and starves other work on the host)."""
    return min(available_cores(), 8)


def set_torch_threads(threads: int | None = None) -> int:
    """Set torch's intra-op thread count to ``threads`` (``None``: :func:`default_threads`)
    and return it. Torch has one such setting per process, so only a process's edge calls
    this (a command handler, a worker process as it starts), never a constructor."""
    n = threads or default_threads()
    torch.set_num_threads(n)
    return n


def amp_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 on CPUs and on GPUs that support it, float16 on older GPUs."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


@contextlib.contextmanager
def autocast(device: torch.device, enabled: bool = True) -> Iterator[None]:
    """Mixed precision on ``device`` (see :func:`amp_dtype`), or nothing when not ``enabled``."""
    if not enabled or device.type not in ("cpu", "cuda"):
        yield
        return
    with torch.autocast(device_type=device.type, dtype=amp_dtype(device)):
        yield
