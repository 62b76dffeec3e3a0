"""Dataset builds: rollouts -> frames -> embeddings -> the ``vlnav-demos`` writer (`vlnav-data build`).

```python
from vlnav_data.collect import BuildConfig, build_dataset

result = build_dataset(BuildConfig(out="demos.h5", num_episodes=100, encoders=("siglip",), expert="ppo"))
```
"""

from vlnav_data.collect.build import BuildProgress, BuildResult, build_dataset, dart_noise
from vlnav_data.collect.config import BuildConfig, load_build_toml, parse_model_paths, parse_shard

__all__ = [
    "BuildConfig",
    "BuildProgress",
    "BuildResult",
    "build_dataset",
    "dart_noise",
    "load_build_toml",
    "parse_model_paths",
    "parse_shard",
]
