"""The ``vlnav-demos`` HDF5 format (DESIGN §5): schema, writer, reader, validator, splits, card.

h5py and numpy only: reading a dataset never imports torch, the simulator or an encoder.
"""

from vlnav_data.dataset.layout import DatasetLayout, EncoderEntry
from vlnav_data.dataset.reader import DatasetReader
from vlnav_data.dataset.schema import FORMAT_NAME, FORMAT_VERSION
from vlnav_data.dataset.splits import episode_seed, episode_split, shard_indices
from vlnav_data.dataset.writer import DatasetWriter, EpisodeRecord, lock_path, partial_path

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "DatasetLayout",
    "DatasetReader",
    "DatasetWriter",
    "EncoderEntry",
    "EpisodeRecord",
    "episode_seed",
    "episode_split",
    "lock_path",
    "partial_path",
    "shard_indices",
]
