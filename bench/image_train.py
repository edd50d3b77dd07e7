"""Image-generation training: a polytune image job against a plain diffusers LoRA loop, side
by side in one run, on the same tiny pipeline, data and seed; plus the time to generate one
sample while training.

The plain loop is what diffusers' Flux LoRA example does, written out by hand (cached latents
and prompt embeddings, peft LoRA on the same projections, AdamW, flow matching with uniform σ).
The polytune job goes through the real server, Oxen's API, scheduler, worker, recipe and
reporter (a store write per step). Steps/s are each loop's own timing of its steps (excluding
start-up and samples). Target: ratio >= 0.95.

    .venv/bin/python bench/image_train.py [--steps 150] [--batch-size 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LR, SEED, RANK = 1e-3, 1234, 16


def plain_diffusers(model_dir: Path, rows: list[dict], steps: int, batch: int) -> dict:
    import torch
    from diffusers import FluxPipeline
    from peft import LoraConfig

    from polytune.training.image.data import cache_dataset
    from polytune.training.image.flux import FLUX_LORA_TARGETS, FluxFamily

    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))  # what the polytune worker uses
    torch.manual_seed(SEED)
    pipe = FluxPipeline.from_pretrained(model_dir)
    pipe.set_progress_bar_config(disable=True)
    for part in (pipe.vae, pipe.text_encoder, pipe.text_encoder_2, pipe.transformer):
        part.requires_grad_(False)
    data = cache_dataset(FluxFamily(), pipe, rows, size=32, max_sequence_length=16)
    transformer = pipe.transformer
    transformer.add_adapter(LoraConfig(r=RANK, lora_alpha=RANK, init_lora_weights="gaussian",
                                       target_modules=FLUX_LORA_TARGETS))
    params = [p for p in transformer.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=LR, weight_decay=0.0)
    g = torch.Generator().manual_seed(SEED)
    transformer.train()
    t0 = time.monotonic()
    for _ in range(steps):
        index = torch.randint(len(data), (batch,), generator=g)
        x0 = data.latents[index]
        noise = torch.randn(x0.shape, generator=g)
        sigmas = torch.rand(batch, generator=g)
        s = sigmas[:, None, None]
        embeds, pooled = data.prompts.take(index)
        pred = transformer(hidden_states=(1 - s) * x0 + s * noise, timestep=sigmas, guidance=None,
                           pooled_projections=pooled, encoder_hidden_states=embeds, txt_ids=data.prompts.text_ids,
                           img_ids=data.image_ids, return_dict=False)[0]
        loss = ((pred - (noise - x0)) ** 2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    runtime = time.monotonic() - t0
    return {"steps": steps, "runtime": runtime, "steps_per_s": steps / runtime}


def polytune_job(data_dir: Path, rows_png: list[tuple[str, bytes, str]], steps: int, batch: int) -> dict:
    import httpx

    from tests.conftest import LiveServer
    from tests.dialects.oxen.support import http, put_file

    server = LiveServer(data_dir, f"sqlite:///{data_dir / 'polytune.db'}")
    try:
        key = server.create_key("bench")
        repo = f"bench/img-{uuid.uuid4().hex[:6]}"
        with http(server, key) as c:
            c.post("/api/repos", json={"namespace": "bench", "name": repo.split("/")[1]})
            lines = ["image,caption"]
            for path, png, caption in rows_png:
                put_file(c, repo, path, png)
                lines.append(f"{path},{caption}")
            put_file(c, repo, "train.csv", ("\n".join(lines) + "\n").encode())
            t0 = time.monotonic()
            ft = c.post(f"/api/repos/{repo}/fine_tunes", json={
                "resource": "main/train.csv", "base_model": "polytune-tiny-diffusion", "script_type": "image_generation",
                "training_params": {"steps": steps, "batch_size": batch, "learning_rate": LR, "lora_rank": RANK,
                                    "lora_alpha": RANK, "timestep_type": "linear", "sample_every": steps,
                                    "samples": 2}}).json()["fine_tune"]
            c.post(f"/api/repos/{repo}/fine_tunes/{ft['id']}/actions/run")
            while (ft := c.get(f"/api/repos/{repo}/fine_tunes/{ft['id']}").json()["fine_tune"])["status"] not in (
                    "completed", "errored", "stopped"):
                time.sleep(0.3)
            wall = time.monotonic() - t0
            if ft["status"] != "completed":
                raise SystemExit(f"polytune job {ft['status']}: {ft['error']}")
        events = httpx.get(f"{server.url}/v1/fine_tuning/jobs/{ft['id']}/events?limit=200",
                           headers={"Authorization": f"Bearer {key}"}).json()["data"]
        finished = next(e["data"] for e in events if e.get("data") and "train_runtime" in e["data"])
        sampled = next(e["data"] for e in events if e.get("data") and "seconds_per_sample" in e["data"])
        # The loop's timing includes the one sampling round (at the last step); take it out.
        runtime = finished["train_runtime"] - sampled["seconds_per_sample"] * 2
        return {"steps": steps, "runtime": runtime, "steps_per_s": steps / runtime,
                "per_sample": sampled["seconds_per_sample"], "job_wall": wall}
    finally:
        server.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch-size", type=int, default=4)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from polytune.data.images import to_data_url
    from polytune.training.tiny_diffusion import ensure_tiny_diffusion
    from tests.training.image_support import COLOURS, SHAPES, shape_png

    pngs = [(f"img/{c}-{s}.png", shape_png(rgb, s), f"a {c} {s}") for c, rgb in COLOURS.items() for s in SHAPES]
    rows = [{"image": to_data_url(png), "caption": caption} for _, png, caption in pngs]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_dir = ensure_tiny_diffusion(tmp / "models")
        plain = plain_diffusers(model_dir, rows, args.steps, args.batch_size)
        ours = polytune_job(tmp / "server", pngs, args.steps, args.batch_size)
    ratio = ours["steps_per_s"] / plain["steps_per_s"]
    print(f"\nLoRA r{RANK}, polytune-tiny-diffusion, {len(rows)} images 32x32, {args.steps} steps, "
          f"batch {args.batch_size}, seed {SEED}\n")
    print("| run | steps | train s | steps/s |")
    print("|---|---|---|---|")
    print(f"| plain diffusers loop | {plain['steps']} | {plain['runtime']:.2f} | {plain['steps_per_s']:.2f} |")
    print(f"| polytune image job | {ours['steps']} | {ours['runtime']:.2f} | {ours['steps_per_s']:.2f} |")
    print(f"\nsteps/s ratio polytune / plain: {ratio:.3f} (target >= 0.95)")
    print(f"time per sample (32x32, 20 denoising steps, LoRA active): {ours['per_sample']:.3f} s")
    print(f"polytune job wall time, create -> completed: {ours['job_wall']:.1f} s (includes worker start-up)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
