"""Frozen vision-language encoders behind one protocol (DESIGN §4).

```python
from vlnav_data.encoders import make_encoder, ENCODER_NAMES, EncoderSpec, fuse, joint_embedding

enc = make_encoder("siglip-tiny-random", device="cpu")   # built-in; also "hf:ORG/NAME", "hf:/dir", plugins
enc.encode_images(rgb_uint8)                      # (B, H, W, 3) uint8 -> float32 (B, E), unit rows
enc.encode_texts(["Go to the red ball"])          # -> float32 (B, E), unit rows, LRU-cached by string
enc.encode_observations(rgb, privileged_state)    # what collect/policy call; the oracle uses the state
enc.encode_joint(rgb, privileged_state, texts)    # the per-step joint vector for any encoder
fuse(image_emb, text_emb, mode="joint")           # joint | concat | image | text
```

``register_encoder(name, factory)`` adds a plugin in this process (installed packages use the entry-point
group ``vlnav_data.encoders``); ``rebuild_encoder(record)`` turns an encoder recorded in a file back into
the encoder, refusing other weights; ``available_encoders()`` lists what can be built here.

torch and transformers are imported only when an encoder is built.
"""

from vlnav_data.encoders.builtin import DEFAULT_ENCODER, ENCODER_NAMES
from vlnav_data.encoders.fusion import FUSION_MODES, fuse, fused_dim, joint_embedding, l2_normalize
from vlnav_data.encoders.plugins import ENTRY_POINT_GROUP, register_encoder, unregister_encoder
from vlnav_data.encoders.rebuild import rebuild_encoder, recorded_dtype, recorded_seed
from vlnav_data.encoders.registry import (
    available_encoders,
    compile_supported,
    describe_encoders,
    encoder_name,
    make_encoder,
    warm_up_compiled,
)
from vlnav_data.encoders.spec import Encoder, EncoderSpec

__all__ = [
    "DEFAULT_ENCODER",
    "ENCODER_NAMES",
    "ENTRY_POINT_GROUP",
    "FUSION_MODES",
    "Encoder",
    "EncoderSpec",
    "available_encoders",
    "compile_supported",
    "describe_encoders",
    "encoder_name",
    "fuse",
    "fused_dim",
    "joint_embedding",
    "l2_normalize",
    "make_encoder",
    "rebuild_encoder",
    "recorded_dtype",
    "recorded_seed",
    "register_encoder",
    "unregister_encoder",
    "warm_up_compiled",
]
