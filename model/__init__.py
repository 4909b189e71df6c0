"""The face parser and everything it needs: pure torch/numpy/PIL, no database, no web."""
