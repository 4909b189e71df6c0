"""Registers the model commands: ``synth`` (model/synth_cli.py) and ``train``, ``evaluate``,
``predict`` (model/train_cli.py)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from model import synth_cli, train_cli

    synth_cli.register(sub)
    train_cli.register(sub)
