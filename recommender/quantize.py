"""int8 copies of open_clip towers for encoding queries on a CPU.

A query is one text or one photo, so the towers run with a batch of one: the text transformer then
reads every weight once per query and is bound by memory, and the vision transformer's matrices are
small. Dynamic quantization (weights stored in int8, activations quantized on the fly) reads a quarter
of the bytes and uses the CPU's integer dot products. nn.MultiheadAttention keeps its input projection
as a bare parameter that quantization skips, so it is first swapped for an equivalent module built
from nn.Linear layers (the outputs are equal in float32: tests/test_embed.py).

Only copies are quantized: the model itself stays float32 for training and for embedding the catalogue.
Whether int8 is used at all is decided by timing and agreement with float32 (recommender/precision.py).
"""
from __future__ import annotations

import copy
import warnings

import torch
import torch.nn.functional as F
from open_clip.transformer import ResidualAttentionBlock
from torch import nn

INT8 = "int8"  # the precision's name, beside torch dtypes, in Embedder.image_precision / text_precision


def int8_available() -> bool:
    """Whether this torch has a CPU engine for quantized linear layers (x86/fbgemm or ARM/qnnpack)."""
    try:
        return torch.backends.quantized.engine not in (None, "none") and hasattr(torch.ao, "quantization")
    except (AttributeError, RuntimeError):
        return False


def int8_copy(module: nn.Module) -> nn.Module:
    """A copy of `module` (float32, on the CPU) whose linear layers compute with int8 weights."""
    clone = _with_linear_attention(copy.deepcopy(module)).eval()
    with warnings.catch_warnings():  # torch announces the move of this API to torchao; it still works
        warnings.simplefilter("ignore")
        quantized = torch.ao.quantization.quantize_dynamic(clone, {nn.Linear}, dtype=torch.qint8)
    for block in quantized.modules():
        mlp = getattr(block, "mlp", None)
        if mlp is not None and hasattr(mlp, "c_fc"):
            # open_clip asks c_fc for the weight dtype to cast activations to; int8 weights have a method
            # there, so it reads this attribute instead (the one its bitsandbytes path sets)
            mlp.c_fc.int8_original_dtype = torch.float32
    return quantized


class LinearSelfAttention(nn.Module):
    """nn.MultiheadAttention for self-attention (batch first, one embedding size), as two nn.Linear
    layers around scaled dot-product attention: the same outputs, in a form quantization reaches."""

    def __init__(self, attention: nn.MultiheadAttention):
        super().__init__()
        width = attention.embed_dim
        self.heads = attention.num_heads
        self.in_proj = nn.Linear(width, 3 * width, bias=attention.in_proj_bias is not None)
        self.out_proj = nn.Linear(width, width, bias=attention.out_proj.bias is not None)
        with torch.no_grad():
            self.in_proj.weight.copy_(attention.in_proj_weight)
            self.out_proj.weight.copy_(attention.out_proj.weight)
            if attention.in_proj_bias is not None:
                self.in_proj.bias.copy_(attention.in_proj_bias)
            if attention.out_proj.bias is not None:
                self.out_proj.bias.copy_(attention.out_proj.bias)

    def forward(self, query, key=None, value=None, need_weights=False, attn_mask=None):
        batch, length, width = query.shape
        qkv = self.in_proj(query).view(batch, length, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=attn_mask)
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, width)), None


def _with_linear_attention(module: nn.Module) -> nn.Module:
    """Swaps the attention of open_clip's self-attention blocks (cross-attention ones keep theirs)."""
    for child in module.modules():
        attention = getattr(child, "attn", None)
        if (
            isinstance(child, ResidualAttentionBlock)
            and not hasattr(child, "ln_1_kv")
            and isinstance(attention, nn.MultiheadAttention)
            and attention.batch_first
            and attention.in_proj_weight is not None
        ):
            child.attn = LinearSelfAttention(attention)
    return module
