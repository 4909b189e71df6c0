"""Edge ground truth: a pixel is an edge when a 4-neighbour has a different label."""
from __future__ import annotations

import numpy as np
import torch

from model.edges import label_edges, label_edges_np


def test_one_pixel_line_marks_itself_and_its_two_neighbour_rows():
    lab = np.zeros((7, 9), np.uint8)
    lab[3, 2:7] = 5
    edges = label_edges_np(lab)
    expected = np.zeros_like(edges)
    expected[3, 2:7] = True              # the line
    expected[2, 2:7] = expected[4, 2:7] = True  # above and below
    expected[3, 1] = expected[3, 7] = True      # left of the first, right of the last
    assert np.array_equal(edges, expected)


def test_diagonal_neighbours_do_not_count():
    lab = np.zeros((3, 3), np.uint8)
    lab[0, 0] = 1
    edges = label_edges_np(lab)
    assert edges[0, 1] and edges[1, 0] and edges[0, 0]
    assert not edges[1, 1]


def test_constant_map_has_no_edges_and_batches_work():
    assert not label_edges_np(np.full((5, 6), 3, np.uint8)).any()
    batch = torch.zeros(2, 4, 4, dtype=torch.long)
    batch[1, :, 2:] = 1
    edges = label_edges(batch)
    assert not edges[0].any()
    assert edges[1, :, 1:3].all() and not edges[1, :, 0].any() and not edges[1, :, 3].any()
