"""``add-parser``: bring your own face parser (a TorchScript or ONNX file) as a model version.

The file is checked (a dummy forward pass through :class:`model.foreign.ForeignParser`, which
also checks its output channels against the label order), written into the data dir's
``models/`` folder as a self-contained ``facet-foreign`` checkpoint (the model's bytes inside)
and recorded as a model version, activated with ``--activate``. It then pre-annotates like any
version, and the next training run trains a fresh Facet student that it may teach.

It lives in webapp/ because it needs both the model (to check the file) and the database (to
record the version); model/ may not import db/ (tests/test_layers.py).
"""
from __future__ import annotations

import argparse
import re
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("add-parser", help="add your own face parser (TorchScript or ONNX) as a "
                                          "model version")
    p.add_argument("file", type=Path, metavar="FILE",
                   help="the parser: a TorchScript archive (.pt) or an ONNX model (.onnx)")
    p.add_argument("--labels", required=True, metavar="ORDER",
                   help="its output channels: celebamask (Facet's order), bisenet "
                        "(face-parsing.PyTorch), farl (facer's celebm), or a comma-separated "
                        "list of class names, one per channel (unknown names: background)")
    p.add_argument("--input-size", type=int, default=None, metavar="N",
                   help="side of the square image it takes, pixels (default: an ONNX model's "
                        "fixed size)")
    p.add_argument("--mean", default=None, metavar="R,G,B",
                   help="normalisation mean of RGB in [0, 1] (default ImageNet's "
                        "0.485,0.456,0.406; 0,0,0 for a model that normalises inside)")
    p.add_argument("--std", default=None, metavar="R,G,B",
                   help="normalisation std (default ImageNet's 0.229,0.224,0.225; 1,1,1 for "
                        "a model that normalises inside)")
    p.add_argument("--data-dir", default=None,
                   help="data folder (default: $FACET_DATA_DIR or ./data)")
    p.add_argument("--activate", action="store_true",
                   help="make it the active model (pre-annotations come from it)")
    p.set_defaults(func=run_add_parser)


def _target(models_dir: Path, name: str) -> Path:
    """``models/parser-<stem>.pt``, numbered when taken."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem)[:60] or "parser"
    target = models_dir / f"parser-{stem}.pt"
    n = 2
    while target.exists():
        target = models_dir / f"parser-{stem}-{n}.pt"
        n += 1
    return target


def run_add_parser(args: argparse.Namespace) -> int:
    from db.database import open_database
    from db.engine import session_scope
    from db.settings import Settings
    from db.versions import activate, add_version
    from model.checkpoint import load_checkpoint
    from model.foreign import (IMAGENET_MEAN, IMAGENET_STD, parse_label_order, parse_triple,
                               read_foreign, save_foreign)

    order = parse_label_order(args.labels)
    mean = IMAGENET_MEAN if args.mean is None else parse_triple(args.mean, "--mean")
    std = IMAGENET_STD if args.std is None else parse_triple(args.std, "--std")
    parser = read_foreign(args.file, order, args.input_size, mean, std)  # checks the file
    spec = parser.spec
    settings = Settings.resolve(data_dir=args.data_dir)
    sessions = open_database(settings)
    target = _target(settings.models_dir, spec.file)
    target.parent.mkdir(parents=True, exist_ok=True)
    note = f"your parser: {spec.file} ({spec.order_name} labels)"
    save_foreign(target, parser, {
        "source": str(Path(args.file).expanduser().resolve()), "note": note,
        "added_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    try:
        ckpt = load_checkpoint(target)  # what every loader will see
        with session_scope(sessions) as session:
            version = add_version(session, target.relative_to(settings.data_dir).as_posix(),
                                  ckpt.config.to_dict(), {}, num_labels=0, note=note)
            if args.activate:
                activate(session, version.id)
            version_id = version.id
    except BaseException:
        target.unlink(missing_ok=True)  # nothing in the database points to it
        raise
    finally:
        sessions.kw["bind"].dispose()
    unknown = spec.unknown_names()
    if unknown:
        print(f"note: {', '.join(unknown)} mean no Facet class; predicted as background")
    state = "now active" if args.activate else "inactive (activate it in the Models tab)"
    print(f"registered {spec.file} ({spec.kind}, {spec.order_name} labels, "
          f"{spec.input_size} px) as model v{version_id}, {state}; stored as "
          f"{target.relative_to(settings.data_dir).as_posix()}")
    return 0

