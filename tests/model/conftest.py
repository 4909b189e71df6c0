"""One torch thread for the model tests: the CI box has 2 cores shared with other jobs, and
under oversubscription 2 threads ran small training steps 5-10x slower than 1 (measured)."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    torch.set_num_threads(1)
    yield
