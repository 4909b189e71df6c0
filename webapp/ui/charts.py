"""Data frames for the native Gradio plots.

Measured with gradio 6.31: a plot whose first value is an empty frame never draws lines for a
``color`` field later (and an empty untyped frame makes a class axis quantitative, so no bars
either). So plots start as ``None``, "no data" is ``None`` too, and frames carry real dtypes.
"""
import pandas as pd


def frame(rows: list[tuple], columns: dict[str, str]) -> pd.DataFrame | None:
    """``rows`` of tuples as a frame with ``columns = {name: dtype}``; ``None`` when empty."""
    if not rows:
        return None
    data = {name: pd.Series([r[i] for r in rows], dtype=dtype)
            for i, (name, dtype) in enumerate(columns.items())}
    return pd.DataFrame(data)


SHARES = {"class": "string", "share (%)": "float64"}
F1 = {"class": "string", "F1": "float64"}
LOSS = {"step": "int64", "value": "float64", "term": "string"}
