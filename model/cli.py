"""Registers the model commands: ``synth`` (model/synth/cli.py), ``train``, ``evaluate``,
``predict`` (model/train_cli.py) and ``pretrain`` (model/prior_cli.py)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from model import prior_cli, train_cli
    from model.synth import cli as synth_cli

    synth_cli.register(sub)
    train_cli.register(sub)
    prior_cli.register(sub)
