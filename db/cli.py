"""Sub-commands of this package (placeholder until its owner fills it in)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add this package's sub-commands to ``sub``."""
