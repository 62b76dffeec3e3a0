"""Dataset builds: rollouts -> frames -> embeddings -> the ``vlnav-demos`` writer (`vlnav-data build`).

```python
from vlnav_data.collect import BuildConfig, build_dataset

result = build_dataset(BuildConfig(out="demos.h5", num_episodes=100, encoders=("siglip",), expert="ppo"))
embed_dataset(EmbedConfig(file="demos.h5", encoders=("clip",)))  # add an encoder to the finished file
```

:func:`build_dataset` is the one entry point: it runs the build in this process
(:func:`~vlnav_data.collect.build.build_local`) or, for ``config.executor.kind == "ray"``, as shard tasks
merged into one file (:func:`~vlnav_data.collect.sharded.build_sharded`), each shard task a local build.
It lives here, above both, so that neither imports the other's caller.
"""

from typing import Any

from vlnav_data.collect.build import BuildResult, build_local
from vlnav_data.collect.config import BuildConfig, load_build_toml, parse_model_paths, parse_shard
from vlnav_data.collect.embed import embed_dataset
from vlnav_data.collect.embed.config import EmbedConfig, EmbedProgress, EmbedResult
from vlnav_data.collect.pipeline import BuildProgress, ProgressFn, dart_noise
from vlnav_data.collect.sharded import build_sharded
from vlnav_data.errors import ConfigError


def build_dataset(config: BuildConfig, progress: ProgressFn | None = None, **injected: Any) -> BuildResult:
    """Build (or resume, or build one shard of) a ``vlnav-demos`` dataset; the arguments, result and errors
    are :func:`~vlnav_data.collect.build.build_local`'s (``injected``: its ``encoders`` and ``env_factory``,
    objects of this process). With ``config.executor.kind == "ray"`` the shards run as Ray tasks and the
    driver merges them (:func:`~vlnav_data.collect.sharded.build_sharded`)."""
    if config.executor.kind == "local":
        return build_local(config, progress, **injected)
    if any(value is not None for value in injected.values()):
        raise ConfigError("injected encoders or env factories cannot be sent to executor tasks; name them instead")
    return build_sharded(config, progress)


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
