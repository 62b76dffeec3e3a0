"""How long until a missing model is reported: the offline-first lookup against the previous network path.

Both run in the same process against an empty Hugging Face cache, with ``HF_HUB_OFFLINE`` unset (what a
user who never set it gets):

- baseline: the previous code path, ``SiglipModel.from_pretrained(model_id, cache_dir=...)``, which asks
  the hub first and, where the hub cannot be reached, retries with back-off before raising ``OSError``;
- vlnav: ``make_encoder("siglip")`` and ``make_encoder("hf:ORG/NAME")``, which look in the cache only
  (``snapshot_download(local_files_only=True)``) and raise ``EncoderError`` with the ``hf download``
  command at once.

    .venv/bin/python bench/missing_weights_latency.py
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path


def main() -> None:
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        os.environ.pop(var, None)
    with tempfile.TemporaryDirectory(prefix="vlnav-empty-hf-") as home:
        os.environ["HF_HOME"] = home
        run(Path(home) / "hub")


def run(cache: Path) -> None:
    import torch
    import transformers

    from vlnav_data.encoders import make_encoder
    from vlnav_data.errors import EncoderError

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()}")
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, empty cache {cache}")
    rows = []
    start = time.perf_counter()
    try:
        transformers.SiglipModel.from_pretrained("google/siglip-so400m-patch14-384", cache_dir=str(cache))
        outcome = "loaded (the hub was reachable: nothing to compare)"
    except OSError as exc:
        outcome = f"OSError: {str(exc).splitlines()[0][:90]}"
    rows.append(("baseline: from_pretrained(model_id), HF_HUB_OFFLINE unset", time.perf_counter() - start, outcome))
    for name in ("siglip", "hf:google/siglip2-base-patch16-naflex"):
        start = time.perf_counter()
        try:
            make_encoder(name)
            outcome = "loaded"
        except EncoderError as exc:
            outcome = f"EncoderError: {str(exc)[:90]}..."
        rows.append((f"vlnav: make_encoder({name!r})", time.perf_counter() - start, outcome))
    for what, seconds, outcome in rows:
        print(f"{what:<62} {seconds:8.2f} s   {outcome}")


if __name__ == "__main__":
    main()
