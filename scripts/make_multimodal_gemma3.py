#!/usr/bin/python3
"""Wraps a gemma3_text model folder as Gemma 3's multimodal checkpoints are
laid out (Gemma3ForConditionalGeneration): the config's model_type gemma3
with the text model's config as text_config (its model_type left out, as
the Hub's configs do) and EOS ids of its own, the language model's tensors
under language_model. (the Hub's checkpoints) or model.language_model.
(what transformers 4.52 and later save), and a small random vision tower
and projector beside them, named as SigLIP's and Gemma 3's are. For tests:
zquant must run, quantize and export the language model alone.

usage: make_multimodal_gemma3.py TEXT_MODEL_DIR OUT_DIR [hub|saved]"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402

TOWER = {"vision_tower.vision_model.embeddings.patch_embedding.weight": (24, 3, 4, 4),
         "vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight": (24, 24),
         "vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.bias": (24,),
         "vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight": (40, 24),
         "vision_tower.vision_model.encoder.layers.0.layer_norm1.weight": (24,),
         "multi_modal_projector.mm_input_projection_weight": (24, 32),
         "multi_modal_projector.mm_soft_emb_norm.weight": (24,)}


def main(src, out, layout="hub"):
    os.makedirs(out, exist_ok=True)
    w = stio.load(os.path.join(src, "model.safetensors"))
    tensors = {}
    for name, v in w.items():
        inner = name[len("model."):] if name.startswith("model.") else name
        if layout == "hub":
            tensors["language_model." + name] = v
        else:  # the head outside the wrapper, the rest inside it
            tensors[name if name.startswith("lm_head") else "model.language_model." + inner] = v
    rng = np.random.default_rng(5)
    for name, shape in TOWER.items():
        tensors[name if layout == "hub" else "model." + name] = (rng.standard_normal(shape) * 0.1).astype(np.float32)
    stio.save(os.path.join(out, "model.safetensors"), tensors)
    text = json.load(open(os.path.join(src, "config.json")))
    text.pop("model_type", None)
    cfg = {"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", "text_config": text,
           "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 24, "num_hidden_layers": 1,
                             "patch_size": 4},
           "mm_tokens_per_image": 4, "eos_token_id": [1, 7]}
    json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:])
