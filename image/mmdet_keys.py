"""One-to-one mapping between this toolkit's QueryInst state_dict keys and mmdetection's.

mmdetection 3.x ``queryinst_r50_fpn_1x_coco`` has 780 state_dict entries (the list with shapes is in
``tests/data/mmdet_queryinst_r50_keys.tsv``); ours has the same 780, renamed by the table below.
"""
from __future__ import annotations

import re

# (our pattern, mmdetection replacement), tried in order; the first full match wins.
_STAGE_BOX = [
    ("self_attn.", "attention.attn."),
    ("attn_norm.", "attention_norm."),
    ("dynamic_conv.param_generator.", "instance_interactive_conv.dynamic_layer."),
    ("dynamic_conv.out_proj.", "instance_interactive_conv.fc_layer."),
    ("dynamic_conv.out_norm.", "instance_interactive_conv.fc_norm."),
    ("dynamic_conv.", "instance_interactive_conv."),
    ("dynamic_norm.", "instance_interactive_conv_norm."),
    ("ffn_in.", "ffn.layers.0.0."),
    ("ffn_out.", "ffn.layers.1."),
    ("ffn_norm.", "ffn_norm."),
    ("cls_tower.", "cls_fcs."),
    ("reg_tower.", "reg_fcs."),
    ("cls_logits.", "fc_cls."),
    ("box_deltas.", "fc_reg."),
]
_STAGE_MASK = [
    ("dynamic_conv.param_generator.", "instance_interactive_conv.dynamic_layer."),
    ("dynamic_conv.", "instance_interactive_conv."),
    ("upsample.", "upsample."),
    ("mask_logits.", "conv_logits."),
]


def to_mmdet_key(key: str) -> str:
    """Our key -> mmdetection's. Raises KeyError for a key with no counterpart (e.g. a track head)."""
    if key.startswith("backbone.body."):
        return "backbone." + key[len("backbone.body."):]
    m = re.fullmatch(r"backbone\.fpn\.(lateral_convs|fpn_convs)\.(\d+)\.(weight|bias)", key)
    if m:
        return f"neck.{m[1]}.{m[2]}.conv.{m[3]}"
    if key == "proposals.boxes.weight":
        return "rpn_head.init_proposal_bboxes.weight"
    if key == "proposals.features.weight":
        return "rpn_head.init_proposal_features.weight"
    m = re.fullmatch(r"stages\.(\d+)\.(box_head|mask_head)\.(.+)", key)
    if m:
        stage, head, rest = m[1], m[2], m[3]
        if head == "box_head":
            prefix, table = f"roi_head.bbox_head.{stage}.", _STAGE_BOX
        else:
            prefix, table = f"roi_head.mask_head.{stage}.", _STAGE_MASK
            c = re.fullmatch(r"convs\.(\d+)\.([01])\.(.+)", rest)
            if c:
                return f"{prefix}convs.{c[1]}.{'conv' if c[2] == '0' else 'bn'}.{c[3]}"
        for ours, theirs in table:
            if rest.startswith(ours):
                return prefix + theirs + rest[len(ours):]
    raise KeyError(f"no mmdetection counterpart for state_dict key '{key}'")


def mmdet_key_map(our_keys: list[str]) -> dict[str, str]:
    """{mmdetection key: our key} for the given model keys; checks the mapping is one-to-one."""
    mapping = {to_mmdet_key(k): k for k in our_keys}
    if len(mapping) != len(our_keys):
        raise AssertionError("key mapping is not one-to-one")
    return mapping
