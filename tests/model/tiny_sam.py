"""A tiny random-weight SAM (img_size 256, width 32) for tests: ~0.2 M parameters, encoder ~20 ms.

Same module layout as the official models, so its state dict goes through the same
checkpoint-path code (:meth:`model.sam.SamModel.from_checkpoint`) with ``builders=TINY_BUILDERS``.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
from segment_anything.modeling import (ImageEncoderViT, MaskDecoder, PromptEncoder, Sam,
                                       TwoWayTransformer)

TINY_IMG = 256
TINY_DIM = 32


def build_tiny_sam(checkpoint: str | None = None) -> Sam:
    """A random tiny SAM; ``checkpoint`` is accepted for registry compatibility and ignored."""
    emb = TINY_IMG // 16
    with torch.random.fork_rng():
        torch.manual_seed(0)
        sam = _tiny(emb)
    return sam.eval()


def _tiny(emb: int) -> Sam:
    return Sam(
        image_encoder=ImageEncoderViT(
            img_size=TINY_IMG, patch_size=16, embed_dim=TINY_DIM, depth=2, num_heads=2,
            mlp_ratio=2, out_chans=TINY_DIM, qkv_bias=True,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True,
            global_attn_indexes=(1,), window_size=4),
        prompt_encoder=PromptEncoder(embed_dim=TINY_DIM, image_embedding_size=(emb, emb),
                                     input_image_size=(TINY_IMG, TINY_IMG), mask_in_chans=4),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=1, embedding_dim=TINY_DIM, mlp_dim=64, num_heads=2),
            transformer_dim=TINY_DIM, iou_head_depth=2, iou_head_hidden_dim=32),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])


TINY_BUILDERS = {"tiny": build_tiny_sam}


def write_tiny_checkpoint(path: Path) -> Path:
    """Save a tiny SAM's state dict to ``path`` (what an official ``.pth`` holds)."""
    torch.save(build_tiny_sam().state_dict(), path)
    return path
