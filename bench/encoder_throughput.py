"""Encoder throughput: uint8 256x256 frames -> L2-normalised SigLIP so400m image embeddings.

Uses the real so400m vision architecture (SiglipVisionConfig: hidden 1152, 27 layers, 16 heads,
MLP 4304, patch 14, 384 px) with random weights, so nothing is downloaded. Compares, in the same run:

- baseline: the plain transformers path: the Hugging Face image processor on the CPU (PIL), fp32
  model, ``get_image_features``, normalise;
- vlnav: ``vlnav_data.encoders`` (``TwoTowerEncoder.encode_images``): uint8 frames to the device
  (pinned memory on CUDA), resize/rescale/normalise there, bf16 (CUDA) or fp32/bf16 (CPU), SDPA
  attention, optionally ``torch.compile``;
- tower: the bare vision tower on ready-made bf16 pixels on the GPU (no preprocessing, no transfer),
  the figure DESIGN §8 quotes (474 images/s eager, 665 compiled on one H100);
- frames on GPU: ``encode_images`` of uint8 frames already on the GPU (what a build with torch
  observations hands the encoder: no host copy), at the tower batch sizes.

CPU runs use batch 8 and one timed batch per row (so400m takes seconds per image on a small CPU).
CUDA runs use bf16 batches 64-512, eager and compiled. It prints the machine and, for every vlnav row,
the embedding cosine against the fp32 reference computed on the same frames.

    .venv/bin/python bench/encoder_throughput.py                 # auto: CUDA when present, else CPU
    .venv/bin/python bench/encoder_throughput.py --device cpu --cpu-batch 8
    .venv/bin/python bench/encoder_throughput.py --device cuda --batches 64,128,256,512
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable

import numpy as np
import torch
import transformers
from machine_info import cpu_name

from vlnav_data.encoders.fusion import l2_normalize
from vlnav_data.encoders.preprocess import ImagePreprocess
from vlnav_data.encoders.random_models import image_processor_for, so400m_vision_config
from vlnav_data.encoders.runtime import cpu_has_native_bf16
from vlnav_data.encoders.spec import EncoderSpec
from vlnav_data.encoders.two_tower import TwoTowerEncoder, pooled

SO400M_PREPROCESS = ImagePreprocess(resize_mode="fixed", height=384, width=384, resample="bicubic")


def machine() -> str:
    cpu = cpu_name(platform.processor() or "unknown CPU")
    parts = [
        f"{platform.node()} {platform.system()} {platform.machine()}",
        f"CPU {cpu}, {os.cpu_count()} logical cores, torch threads {torch.get_num_threads()}, "
        f"torch CPU capability {torch.backends.cpu.get_cpu_capability()} (native bf16: {cpu_has_native_bf16()})",
        f"python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}",
    ]
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        parts.append(f"GPU {props.name}, {props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}")
    else:
        parts.append("no CUDA GPU")
    return "\n".join("  " + p for p in parts)


def build_model(seed: int = 0, layers: int | None = None):
    """SiglipModel with the so400m vision tower (random weights) and a 1-layer text tower (unused).

    ``layers``: vision layers (None: ``BENCH_SO400M_LAYERS`` if set, else so400m's 27); fewer only for a dry
    run of the benches (``bench/gpu_check.sh`` with ``GPU_CHECK_DRY_RUN=1`` sets the variable).
    """
    vision = so400m_vision_config()
    if layers is None and os.environ.get("BENCH_SO400M_LAYERS"):
        layers = int(os.environ["BENCH_SO400M_LAYERS"])
    if layers is not None:
        vision["num_hidden_layers"] = int(layers)
    config = transformers.SiglipConfig(
        text_config={
            "vocab_size": 256,
            "hidden_size": 1152,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 16,
            "bos_token_id": None,
            "eos_token_id": 1,
            "pad_token_id": 1,
        },
        vision_config=vision,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers.SiglipModel._from_config(config, attn_implementation="sdpa")
    return model.eval().requires_grad_(False)


def make_encoder(model, device: str, dtype: torch.dtype, batch_size: int, compile: bool) -> TwoTowerEncoder:
    spec = EncoderSpec(
        name="siglip-so400m-random",
        model_id="random so400m architecture (benchmark)",
        revision="seed-0",
        dim=1152,
        dtype=str(dtype).removeprefix("torch."),
        device=device,
        privileged=False,
        note="benchmark only",
    )
    return TwoTowerEncoder(
        spec=spec,
        model=model.to(device=device, dtype=dtype),
        tokenizer=None,
        preprocess=SO400M_PREPROCESS,
        text_max_length=64,
        text_inputs=("input_ids",),
        batch_size=batch_size,
        text_cache_size=0,
        compile=compile,
    )


def baseline_embed(model, processor, frames: np.ndarray, device: str) -> np.ndarray:
    """The plain transformers path: CPU processor, fp32 model."""
    with torch.inference_mode():
        pixels = processor(images=list(frames), return_tensors="pt")["pixel_values"].to(device)
        feats = pooled(model.get_image_features(pixel_values=pixels))
        return torch.nn.functional.normalize(feats.float(), dim=-1).cpu().numpy()


def timed(fn: Callable[[], np.ndarray], iters: int, n_images: int, device: str) -> tuple[float, np.ndarray]:
    """Run ``fn`` ``iters`` times after it has been warmed up; return images/s and the last output."""
    sync(device)
    start = time.perf_counter()
    out = None
    for _ in range(iters):
        out = fn()
    sync(device)
    return iters * n_images / (time.perf_counter() - start), out


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.min(np.sum(l2_normalize(a) * l2_normalize(b), axis=1)))


def run_cpu(args, frames_for: Callable[[int], np.ndarray]) -> list[dict]:
    processor = image_processor_for("siglip", size={"height": 384, "width": 384})
    frames = frames_for(args.cpu_batch)
    warm = frames[:1]
    rows = []
    model = build_model(layers=args.layers)
    # baseline: HF processor + fp32 model
    baseline_embed(model, processor, warm, "cpu")
    ips, ref = timed(lambda: baseline_embed(model, processor, frames, "cpu"), args.cpu_iters, len(frames), "cpu")
    rows.append(
        {"path": "baseline (HF processor on CPU, fp32)", "device": "cpu", "batch": len(frames), "images_per_s": ips}
    )
    print(f"  {rows[-1]['path']:<40} batch {len(frames):>4}: {ips:8.3f} images/s", flush=True)
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    for dtype in (dtypes[d] for d in args.cpu_dtypes.split(",") if d):
        enc = make_encoder(model, "cpu", dtype, args.cpu_batch, compile=False)
        enc.encode_images(warm)
        ips, out = timed(lambda enc=enc: enc.encode_images(frames), args.cpu_iters, len(frames), "cpu")
        rows.append(
            {
                "path": f"vlnav ({str(dtype).removeprefix('torch.')})",
                "device": "cpu",
                "batch": len(frames),
                "images_per_s": ips,
                "min_cosine_vs_fp32_baseline": cosine(out, ref),
            }
        )
        print(f"  {rows[-1]['path']:<40} batch {len(frames):>4}: {ips:8.3f} images/s", flush=True)
    return rows


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_cuda(args, frames_for: Callable[[int], np.ndarray], device: str = "cuda") -> list[dict]:
    rows = []
    processor = image_processor_for("siglip", size={"height": 384, "width": 384})
    model32 = build_model(layers=args.layers).to(device)
    refs = {}
    for batch in args.baseline_batches:
        frames = frames_for(batch)
        baseline_embed(model32, processor, frames[:8], device)
        ips, refs[batch] = timed(
            lambda f=frames, m=model32: baseline_embed(m, processor, f, device), args.iters, batch, device
        )
        rows.append(
            {"path": "baseline (HF processor on CPU, fp32)", "device": device, "batch": batch, "images_per_s": ips}
        )
    del model32
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    model = build_model(layers=args.layers).to(device=device, dtype=torch.bfloat16)
    for compile_ in (False, True) if not args.no_compile else (False,):
        for batch in args.batches:
            enc = make_encoder(model, device, torch.bfloat16, batch, compile=compile_)
            frames = frames_for(batch)
            t0 = time.perf_counter()
            for _ in range(2):
                enc.encode_images(frames)
            warm_s = time.perf_counter() - t0
            ips, out = timed(lambda enc=enc, f=frames: enc.encode_images(f), args.iters, batch, device)
            row = {
                "path": f"vlnav bf16 {'compiled' if compile_ else 'eager'}",
                "device": device,
                "batch": batch,
                "images_per_s": ips,
                "warmup_s": warm_s,
            }
            if batch in refs:
                row["min_cosine_vs_fp32_baseline"] = cosine(out, refs[batch])
            rows.append(row)
            print(f"  {row['path']:<40} batch {batch:>4}: {row['images_per_s']:8.1f} images/s", flush=True)
            if batch not in args.tower_batches:
                continue
            # frames already on the GPU (what a build with torch observations hands the encoder): no host copy
            on_device = torch.from_numpy(frames).to(device)
            enc.encode_images(on_device)
            ips, _ = timed(lambda enc=enc, f=on_device: enc.encode_images(f), args.iters, batch, device)
            rows.append(
                {
                    "path": f"vlnav bf16 {'compiled' if compile_ else 'eager'}, frames on GPU",
                    "device": device,
                    "batch": batch,
                    "images_per_s": ips,
                }
            )
            print(f"  {rows[-1]['path']:<40} batch {batch:>4}: {ips:8.1f} images/s", flush=True)
            # bare tower on ready pixels (DESIGN §8's figure), same compile mode
            pixels = torch.randn(batch, 3, 384, 384, device=device, dtype=torch.bfloat16)
            tower = model.vision_model
            fn = torch.compile(tower) if compile_ else tower
            with torch.inference_mode():
                for _ in range(2):
                    fn(pixel_values=pixels)
                sync(device)
                t0 = time.perf_counter()
                for _ in range(args.iters):
                    fn(pixel_values=pixels)
                sync(device)
            rows.append(
                {
                    "path": f"tower only bf16 {'compiled' if compile_ else 'eager'}",
                    "device": device,
                    "batch": batch,
                    "images_per_s": args.iters * batch / (time.perf_counter() - t0),
                }
            )
            print(f"  {rows[-1]['path']:<40} batch {batch:>4}: {rows[-1]['images_per_s']:8.1f} images/s", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--cpu-batch", type=int, default=8)
    parser.add_argument("--cpu-dtypes", default="fp32,bf16", help="vlnav CPU rows to run")
    parser.add_argument("--cpu-iters", type=int, default=1, help="timed batches per CPU row")
    parser.add_argument("--batches", default="64,128,256,512", help="CUDA batch sizes")
    parser.add_argument("--baseline-batches", default="64,256", help="CUDA batch sizes of the baseline rows")
    parser.add_argument("--tower-batches", default="256", help="CUDA batch sizes of the bare-tower rows")
    parser.add_argument("--iters", type=int, default=5, help="timed batches per CUDA row")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    parser.add_argument("--layers", type=int, default=None, help="vision layers (default: so400m's 27; dry runs)")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    args = parser.parse_args()
    args.batches = [int(b) for b in args.batches.split(",")]
    args.baseline_batches = [int(b) for b in args.baseline_batches.split(",")]
    args.tower_batches = [int(b) for b in args.tower_batches.split(",") if b]
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device

    rng = np.random.default_rng(0)
    pool = rng.integers(0, 256, size=(max([args.cpu_batch, *args.batches]), 256, 256, 3), dtype=np.uint8)

    def frames_for(n: int) -> np.ndarray:
        return pool[:n]

    print("encoder throughput: SigLIP so400m architecture (random weights), uint8 256x256 -> unit embeddings")
    print(machine(), flush=True)
    transformers.utils.logging.set_verbosity_error()
    rows = run_cuda(args, frames_for) if device == "cuda" else run_cpu(args, frames_for)
    print(f"\n{'path':<42}{'device':>7}{'batch':>7}{'images/s':>11}{'s/image':>9}  cosine vs fp32 baseline")
    for r in rows:
        cos = r.get("min_cosine_vs_fp32_baseline")
        print(
            f"{r['path']:<42}{r['device']:>7}{r['batch']:>7}{r['images_per_s']:>11.2f}{1 / r['images_per_s']:>9.3f}  "
            + (f"{cos:.5f}" if cos is not None else "")
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
