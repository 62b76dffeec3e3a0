"""Training throughput of ``--features pixels`` (samples/s) at 64 and 256 px, from HDF5 frame blocks.

For each image size a synthetic ``vlnav-demos`` file (``write_synthetic_dataset``: gzip frames, one frame
per chunk, as ``vlnav-data build`` writes them) is trained with the ``pixels`` recipe's network and
optimiser (Nature CNN, Adam 3e-4, batch 128, BCE on the wheel signs) for ``--steps`` gradient steps:

- ``blocks``: :func:`vlnav_data.policy.pixels.fit_pixels` reading the frames through
  :class:`~vlnav_data.policy.pixels.FrameBlocks` with a ``--cache-mib`` cache (the split in blocks of whole
  episodes: at 256 px and a small cache, several blocks, each read from the file when visited);
- ``in-memory`` (same-run baseline): the same network and steps with the whole split already decoded in
  one array (one block that holds everything, read before the clock starts).

samples/s counts optimisation time only, block reads included for ``blocks``. Usage::

    python bench/policy_pixels.py [--steps 60] [--episodes 24] [--cache-mib 64] [--threads 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

from machine_info import torch_cpu_machine


def run(path: Path, steps: int, cache_mib: int, threads: int) -> dict[str, float]:
    from vlnav_data.dataset import DatasetReader
    from vlnav_data.policy.fit import get_recipe
    from vlnav_data.policy.pixels import FrameBlocks, fit_pixels, text_index_rows

    recipe = dataclasses.replace(get_recipe("pixels"), num_steps=steps, eval_every_steps=steps, select_by="valid_loss")
    out: dict[str, float] = {}
    with DatasetReader(path) as r:
        names = r.split("train")
        table = r.text_embeddings(r.encoders[0])
        index = text_index_rows(r, names)
        for label, cache in (("blocks", cache_mib * 2**20), ("in-memory", 2**40)):
            blocks = FrameBlocks(r, names, cache)
            if label == "in-memory":
                blocks.load(0)  # decoded before the clock starts
            t0 = time.perf_counter()
            fit = fit_pixels(blocks, None, table, index, recipe=recipe, seed=0, num_threads=threads)
            out[label] = fit.samples_per_s
            out[f"{label}_blocks"] = len(blocks.blocks)
            out[f"{label}_wall_s"] = time.perf_counter() - t0
            out[f"{label}_mib_read"] = blocks.bytes_read / 2**20
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--episodes", type=int, default=24)
    parser.add_argument("--cache-mib", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sizes", default="64,256")
    args = parser.parse_args()
    from vlnav_data.dataset.synthetic import write_synthetic_dataset

    print(f"machine: {torch_cpu_machine(args.threads)}")
    with tempfile.TemporaryDirectory() as tmp:
        for px in (int(s) for s in args.sizes.split(",")):
            path = write_synthetic_dataset(
                Path(tmp) / f"px{px}.h5", args.episodes, {"siglip-tiny-random": 64}, image_size=(px, px), max_steps=100
            )
            res = run(path, args.steps, args.cache_mib, args.threads)
            print(
                f"{px:>4d} px: blocks {res['blocks']:8.0f} samples/s ({res['blocks_blocks']:.0f} blocks of <= "
                f"{args.cache_mib} MiB, {res['blocks_mib_read']:.0f} MiB read) | in-memory baseline "
                f"{res['in-memory']:8.0f} samples/s | {args.steps} steps of 128"
            )
    print(f"after: {torch_cpu_machine(args.threads)}")


if __name__ == "__main__":
    main()
