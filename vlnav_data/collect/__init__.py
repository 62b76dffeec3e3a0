"""Dataset builds: rollouts -> frames -> embeddings -> the ``vlnav-demos`` writer (`vlnav-data build`).

```python
from vlnav_data.collect import BuildConfig, build_dataset

result = build_dataset(BuildConfig(out="demos.h5", num_episodes=100, encoders=("siglip",), expert="ppo"))
embed_dataset(EmbedConfig(file="demos.h5", encoders=("clip",)))  # add an encoder to the finished file
```
"""

from vlnav_data.collect.build import BuildResult, build_dataset
from vlnav_data.collect.config import BuildConfig, load_build_toml, parse_model_paths, parse_shard
from vlnav_data.collect.embed import embed_dataset
from vlnav_data.collect.embed.config import EmbedConfig, EmbedProgress, EmbedResult
from vlnav_data.collect.pipeline import BuildProgress, dart_noise

__all__ = [
    "BuildConfig",
    "BuildProgress",
    "BuildResult",
    "EmbedConfig",
    "EmbedProgress",
    "EmbedResult",
    "build_dataset",
    "dart_noise",
    "embed_dataset",
    "load_build_toml",
    "parse_model_paths",
    "parse_shard",
]
