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


TINY2_OVERRIDES = (
    f"++model.image_size={TINY_IMG}", "++model.image_encoder.trunk.embed_dim=16",
    "++model.image_encoder.trunk.num_heads=1", "++model.image_encoder.trunk.stages=[1,1,2,1]",
    "++model.image_encoder.trunk.global_att_blocks=[3]",
    "++model.image_encoder.neck.backbone_channel_list=[128,64,32,16]",
    "++model.image_encoder.neck.d_model=32", "++model.memory_attention.d_model=32",
    "++model.memory_attention.layer.d_model=32", "++model.memory_encoder.out_dim=16",
)
"""Hydra overrides that shrink SAM 2.1 tiny's config to a test model (256 px, width 16-32)."""


def build_tiny_sam2(checkpoint: str | None = None):
    """A random tiny SAM 2.1 from the ``sam2`` package's own tiny config, shrunk."""
    from model.sam2_model import build_sam2_architecture

    with torch.random.fork_rng():
        torch.manual_seed(0)
        return build_sam2_architecture("configs/sam2.1/sam2.1_hiera_t.yaml", checkpoint,
                                       TINY2_OVERRIDES)


TINY2_BUILDERS = {"tiny2": build_tiny_sam2}


def write_tiny_sam2_checkpoint(path: Path) -> Path:
    """Save a tiny SAM 2's weights as the official files hold them (``{"model": state}``)."""
    torch.save({"model": build_tiny_sam2().state_dict()}, path)
    return path
