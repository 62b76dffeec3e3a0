"""`embed_dataset(config)`: add encoders to an existing ``vlnav-demos`` file (`vlnav-data embed`).

Every frame, privileged state and instruction of a build is in its file, so a new encoder needs no new
simulation: ``embed`` reads them back, computes ``obs/<X>_image``, ``obs/<X>_joint`` and
``/meta/text_embeddings/<X>`` with :class:`~vlnav_data.collect.embed.embedder.EpisodeEmbedder` (the code the
build runs, with the same fusion, dtype and float16 storage), and writes a file that holds everything
the input held plus the new encoders. ``embed(build(A), B)`` therefore equals ``build(A and B)`` array
for array on the same device and dtype.

Crash safety (HDF5 is not journaled, so the input is never opened for writing):

1. each finished episode's embeddings go to a sidecar, ``<OUT>.embed.partial``
   (:mod:`vlnav_data.dataset.sidecar`), committed (``num_samples`` last) and flushed one by one;
2. when all are done, ``<OUT>.partial`` is written: a raw HDF5 object copy of the input (chunks are
   copied as stored, never decompressed or recompressed; :mod:`vlnav_data.dataset.augment`) plus the
   sidecar's arrays and updated ``encoders_json`` / ``features_json`` / ``rebuild_command``, then
   ``complete=True``, fsync;
3. the sidecar is marked ``assembled``, ``<OUT>.partial`` is renamed to ``OUT`` atomically (in place:
   ``OUT`` is ``FILE``, replaced in one rename), the directory fsynced and the sidecar deleted.

A SIGKILL at any moment leaves the input untouched and valid, and never a file at ``OUT`` that lacks
an encoder it claims. ``--resume`` keeps the committed episodes of the sidecar (it checks that the
input, the encoder list and the models are the same, and that precisions do not mix) and computes only
the rest; after a kill during steps 2-3 it redoes the copy or just the rename. Without ``--resume`` a
leftover sidecar is refused (``--overwrite`` discards it). ``OUT.lock`` keeps a second writer away.

Files written by ``embed`` keep the input's ``build_config_json`` (what ``build`` ran; its ``encoders``
list stays the build's); ``encoders_json`` lists every encoder, and ``rebuild_command`` becomes the
build command followed by ``&& vlnav-data embed ...``, which reproduces the file.

Disk cost: the sidecar holds only the new embeddings (about 2 x 2 bytes x E per frame and encoder,
before gzip); step 2 writes a second copy of the input, so at the end ``FILE + OUT`` (about twice the
input plus the new arrays) must fit on the disk for a moment, also in place, until the rename frees
the old file.

On Ray (``--ray``, :mod:`vlnav_data.collect.embed.tasks`), workers compute the embeddings of ranges of
episodes from the shared input file and send them back; this process alone writes the sidecar and the
output, in episode order, so everything above holds unchanged.

Refused before any model loads: a ``.partial`` or incomplete input, a state-only file (no
``obs/rgb``; the oracle alone would only need the privileged state, but ``vlnav-demos`` 1.x requires
frames, so such a file cannot become a valid one), a file that fails ``validate``, an encoder the file
already holds (unless ``--replace``, which recomputes it in its place), an existing ``--out``
(unless ``--overwrite``).

Pieces, each importing only those before it: ``config.py`` (the config, progress and result records),
``checks.py`` (what is read from the input and the checks that run before any model loads), ``stage.py``
(the embedding stage in this process), ``tasks.py`` (the stage on an executor, e.g. Ray), ``run.py``
(:func:`embed_dataset`: the steps above). The per-episode computation that ``build`` and ``embed`` share is
:mod:`vlnav_data.collect.embed.embedder`, below both.
"""

from __future__ import annotations

from vlnav_data.collect.embed.config import EmbedConfig, EmbedProgress, EmbedResult
from vlnav_data.collect.embed.run import embed_dataset

__all__ = ["EmbedConfig", "EmbedProgress", "EmbedResult", "embed_dataset"]
