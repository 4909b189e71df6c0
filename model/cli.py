"""Registers the model commands: ``synth`` (model/synth/cli.py) and ``train``, ``evaluate``,
``predict`` (model/train_cli.py)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from model import train_cli
    from model.synth import cli as synth_cli

    synth_cli.register(sub)
    train_cli.register(sub)
