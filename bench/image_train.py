"""Image-generation training: polytune image jobs against plain diffusers LoRA loops, side by
side in one run, on the same tiny pipelines, data and seed; plus the time to generate one
sample while training.

The plain loops are diffusers' examples written out by hand: `train_dreambooth_lora_flux.py`
for polytune-tiny-diffusion (flow matching, uniform σ) and `train_text_to_image_lora.py` for
polytune-tiny-unet (noise prediction, uniform discrete timesteps, `DDPMScheduler.add_noise`);
both with cached latents and prompt embeddings, peft LoRA on the same projections as polytune,
AdamW. The polytune jobs go through the real server, Oxen's API, scheduler, worker, recipe and
reporter (a store write per step).

After an untimed warm-up of each, the runs are interleaved — plain, polytune, plain,
polytune, ... (`--repeats` rounds per model) — so both see the same machine load over time; the table gives each run's steps/s (each
loop's own timing of its steps, start-up and samples excluded) and the ratio of the medians.
Target: ratio >= 0.95.

    .venv/bin/python bench/image_train.py [--steps 150] [--batch-size 4] [--repeats 3] [--models flux,unet] [--smoke]

--smoke: 3 steps at batch 2, one round, no separate warm-up: the smallest run through every part (the
test suite runs it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LR, SEED, RANK = 1e-3, 1234, 16
MODELS = {"flux": "polytune-tiny-diffusion", "unet": "polytune-tiny-unet"}


def _lora(targets):
    from peft import LoraConfig

    return LoraConfig(r=RANK, lora_alpha=RANK, init_lora_weights="gaussian", target_modules=targets)


def _timed_steps(params, optimizer, steps: int, loss_fn) -> float:
    import torch

    t0 = time.monotonic()
    for _ in range(steps):
        loss = loss_fn()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.monotonic() - t0


def plain_flux(model_dir: Path, rows: list[dict], steps: int, batch: int) -> float:
    """Steps/s of diffusers' Flux LoRA example's loop."""
    import torch
    from diffusers import FluxPipeline

    from polytune.training.image.data import cache_dataset
    from polytune.training.image.flux import FLUX_LORA_TARGETS, FluxFamily

    torch.manual_seed(SEED)
    pipe = FluxPipeline.from_pretrained(model_dir)
    pipe.set_progress_bar_config(disable=True)
    for part in (pipe.vae, pipe.text_encoder, pipe.text_encoder_2, pipe.transformer):
        part.requires_grad_(False)
    data = cache_dataset(FluxFamily(), pipe, rows, size=32, max_sequence_length=16)
    transformer = pipe.transformer
    transformer.add_adapter(_lora(FLUX_LORA_TARGETS))
    params = [p for p in transformer.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=LR, weight_decay=0.0)
    g = torch.Generator().manual_seed(SEED)
    transformer.train()

    def loss():
        index = torch.randint(len(data), (batch,), generator=g)
        x0 = data.latents[index]
        noise = torch.randn(x0.shape, generator=g)
        sigmas = torch.rand(batch, generator=g)
        s = sigmas[:, None, None]
        embeds, pooled = data.prompts.take(index)
        pred = transformer(
            hidden_states=(1 - s) * x0 + s * noise,
            timestep=sigmas,
            guidance=None,
            pooled_projections=pooled,
            encoder_hidden_states=embeds,
            txt_ids=data.prompts.text_ids,
            img_ids=data.image_ids,
            return_dict=False,
        )[0]
        return ((pred - (noise - x0)) ** 2).mean()

    return steps / _timed_steps(params, optimizer, steps, loss)


def plain_unet(model_dir: Path, rows: list[dict], steps: int, batch: int) -> float:
    """Steps/s of diffusers' text-to-image LoRA example's loop (epsilon prediction)."""
    import torch
    from diffusers import DDPMScheduler, StableDiffusionPipeline

    from polytune.training.image.data import cache_dataset
    from polytune.training.image.unet import UNET_LORA_TARGETS, UNetFamily

    torch.manual_seed(SEED)
    pipe = StableDiffusionPipeline.from_pretrained(model_dir)
    pipe.set_progress_bar_config(disable=True)
    for part in (pipe.vae, pipe.text_encoder, pipe.unet):
        part.requires_grad_(False)
    data = cache_dataset(UNetFamily(), pipe, rows, size=32, max_sequence_length=16)
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    unet = pipe.unet
    unet.add_adapter(_lora(UNET_LORA_TARGETS))
    params = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=LR, weight_decay=0.0)
    g = torch.Generator().manual_seed(SEED)
    unet.train()

    def loss():
        index = torch.randint(len(data), (batch,), generator=g)
        x0 = data.latents[index]
        noise = torch.randn(x0.shape, generator=g)
        timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (batch,), generator=g)
        embeds, _ = data.prompts.take(index)
        pred = unet(
            noise_scheduler.add_noise(x0, noise, timesteps), timesteps, encoder_hidden_states=embeds, return_dict=False
        )[0]
        return ((pred - noise) ** 2).mean()

    return steps / _timed_steps(params, optimizer, steps, loss)


class PolytuneJobs:
    """One live server with one repository of the images; each call runs one Oxen image job."""

    def __init__(self, data_dir: Path, rows_png: list[tuple[str, bytes, str]]):
        from tests.conftest import LiveServer
        from tests.dialects.oxen.support import http, put_file

        self.server = LiveServer(data_dir, f"sqlite:///{data_dir / 'polytune.db'}")
        self.key = self.server.create_key("bench")
        self.repo = f"bench/img-{uuid.uuid4().hex[:6]}"
        with http(self.server, self.key) as c:
            c.post("/api/repos", json={"namespace": "bench", "name": self.repo.split("/")[1]})
            lines = ["image,caption"]
            for path, png, caption in rows_png:
                put_file(c, self.repo, path, png)
                lines.append(f"{path},{caption}")
            put_file(c, self.repo, "train.csv", ("\n".join(lines) + "\n").encode())

    def run(self, base_model: str, steps: int, batch: int) -> dict:
        import httpx

        from tests.dialects.oxen.support import http

        with http(self.server, self.key) as c:
            t0 = time.monotonic()
            ft = c.post(
                f"/api/repos/{self.repo}/fine_tunes",
                json={
                    "resource": "main/train.csv",
                    "base_model": base_model,
                    "script_type": "image_generation",
                    "training_params": {
                        "steps": steps,
                        "batch_size": batch,
                        "learning_rate": LR,
                        "lora_rank": RANK,
                        "lora_alpha": RANK,
                        "timestep_type": "linear",
                        "sample_every": steps,
                        "samples": 2,
                    },
                },
            ).json()["fine_tune"]
            c.post(f"/api/repos/{self.repo}/fine_tunes/{ft['id']}/actions/run")
            while (ft := c.get(f"/api/repos/{self.repo}/fine_tunes/{ft['id']}").json()["fine_tune"])["status"] not in (
                "completed",
                "errored",
                "stopped",
            ):
                time.sleep(0.3)
            wall = time.monotonic() - t0
            if ft["status"] != "completed":
                raise SystemExit(f"polytune job {ft['status']}: {ft['error']}")
        events = httpx.get(
            f"{self.server.url}/v1/fine_tuning/jobs/{ft['id']}/events?limit=200",
            headers={"Authorization": f"Bearer {self.key}"},
        ).json()["data"]
        finished = next(e["data"] for e in events if e.get("data") and "train_runtime" in e["data"])
        sampled = next(e["data"] for e in events if e.get("data") and "seconds_per_sample" in e["data"])
        # The loop's timing includes the one sampling round (at the last step); take it out.
        runtime = finished["train_runtime"] - sampled["seconds_per_sample"] * 2
        return {"steps_per_s": steps / runtime, "per_sample": sampled["seconds_per_sample"], "job_wall": wall}

    def stop(self) -> None:
        self.server.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds (plain, polytune) per model")
    ap.add_argument("--models", default="flux,unet", help="comma-separated: flux, unet")
    ap.add_argument("--smoke", action="store_true", help="smallest run through every part (for the tests)")
    args = ap.parse_args()
    if args.smoke:
        args.steps, args.repeats, args.batch_size = 3, 1, 2
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from polytune.data.images import to_data_url
    from polytune.catalog.tiny_diffusion import ensure_tiny_diffusion
    from polytune.catalog.tiny_unet import ensure_tiny_unet
    from tests.training.image_support import COLOURS, SHAPES, shape_png

    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))  # what the polytune worker uses
    pngs = [(f"img/{c}-{s}.png", shape_png(rgb, s), f"a {c} {s}") for c, rgb in COLOURS.items() for s in SHAPES]
    rows = [{"image": to_data_url(png), "caption": caption} for _, png, caption in pngs]
    plain_loops = {"flux": (plain_flux, ensure_tiny_diffusion), "unet": (plain_unet, ensure_tiny_unet)}
    results = {m: {"plain": [], "polytune": []} for m in models}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        jobs = PolytuneJobs(tmp / "server", pngs)
        try:
            # Untimed warm-up: the server's warm worker finishes preloading, both sides build or
            # copy the pipelines, so no timed run overlaps another's start-up.
            for m in models if not args.smoke else ():
                plain_loops[m][0](plain_loops[m][1](tmp / "models"), rows, 5, args.batch_size)
                jobs.run(MODELS[m], 5, args.batch_size)
            for round_ in range(args.repeats):
                for m in models:
                    loop, ensure = plain_loops[m]
                    results[m]["plain"].append(loop(ensure(tmp / "models"), rows, args.steps, args.batch_size))
                    results[m]["polytune"].append(jobs.run(MODELS[m], args.steps, args.batch_size))
                    print(
                        f"round {round_ + 1}/{args.repeats} {m}: plain {results[m]['plain'][-1]:.2f} steps/s, "
                        f"polytune {results[m]['polytune'][-1]['steps_per_s']:.2f} steps/s",
                        flush=True,
                    )
        finally:
            jobs.stop()
    print(
        f"\nLoRA r{RANK}, {len(rows)} images 32x32, {args.steps} steps, batch {args.batch_size}, seed {SEED}, "
        f"{args.repeats} interleaved rounds (plain, polytune) per model\n"
    )
    print(
        "| model | plain diffusers steps/s (each run) | polytune steps/s (each run) | median plain | median polytune "
        "| ratio of medians | s per sample |"
    )
    print("|---|---|---|---|---|---|---|")
    for m in models:
        plain = results[m]["plain"]
        ours = [r["steps_per_s"] for r in results[m]["polytune"]]
        per_sample = statistics.median(r["per_sample"] for r in results[m]["polytune"])
        ratio = statistics.median(ours) / statistics.median(plain)
        print(
            f"| {MODELS[m]} | {', '.join(f'{v:.2f}' for v in plain)} | {', '.join(f'{v:.2f}' for v in ours)} "
            f"| {statistics.median(plain):.2f} | {statistics.median(ours):.2f} | **{ratio:.3f}** | {per_sample:.3f} |"
        )
    walls = [r["job_wall"] for m in models for r in results[m]["polytune"]]
    print("\ntarget: ratio >= 0.95. s per sample: one 32x32 image, 20 denoising steps, LoRA active, in the job.")
    print(
        f"polytune job wall time, create -> completed: median {statistics.median(walls):.1f} s "
        "(includes worker start-up and caching)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
