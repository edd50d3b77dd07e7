"""DDP or FSDP for multi-worker jobs (training/sharding.py), and FSDP training for real.

The decision is a pure function, tested on its own. The FSDP path runs two ranks of the
training entry (run_training, the sft recipe, the tiny model) under a gloo process group, as
a Ray Train job's workers do, and is compared with one process at the same global batch.

On CPU, accelerate (1.15) enables FSDP for accelerator devices only: with `fsdp` set it
silently runs DDP. `_accelerate_shards_on_cpu` lifts that one gate (the distributed type), so
the rest — transformers' FSDP2 wrapping, the gathered final save, the sharded resume
checkpoints each rank stores its part of, the resume fetched once per node — runs the code a GPU
job runs; `_small_device` makes "auto" see a device the model does not fit. Nothing else is
replaced.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch

from polytune.store.blobs import BlobStore
from polytune.training.sharding import GB, choose_strategy, fsdp_training_args, memory_need, model_shape

# ---- the decision ----


def test_one_worker_has_nothing_to_choose():
    assert choose_strategy("always", workers=1, device_memory=80 * GB, n_params=10**9, lora=False) is None


def test_auto_shards_only_what_does_not_fit_one_device():
    # 7B parameters, full fine-tune: 112 GB of training state, more than an 80 GB device.
    big = choose_strategy("auto", workers=8, device_memory=80 * GB, n_params=7 * 10**9, lora=False)
    assert big.fsdp and "does not fit" in big.reason and "104.3 GB" in big.reason
    # 1B: 16 GB, well within 80% of 80 GB.
    small = choose_strategy("auto", workers=8, device_memory=80 * GB, n_params=10**9, lora=False)
    assert not small.fsdp and "fits one device" in small.reason


def test_lora_counts_the_frozen_weights_not_an_optimizer_for_them():
    # 7B with LoRA: ~4.4 bytes a parameter (~29 GB) fits an 80 GB device; a full fine-tune does not.
    assert memory_need(7 * 10**9, lora=True) < 0.4 * memory_need(7 * 10**9, lora=False)
    assert not choose_strategy("auto", workers=2, device_memory=80 * GB, n_params=7 * 10**9, lora=True).fsdp
    # ... but not a 24 GB one.
    assert choose_strategy("auto", workers=2, device_memory=24 * GB, n_params=7 * 10**9, lora=True).fsdp


def test_the_setting_overrides_auto_on_accelerators():
    assert choose_strategy("always", workers=2, device_memory=80 * GB, n_params=10**6, lora=False).fsdp
    never = choose_strategy("never", workers=2, device_memory=8 * GB, n_params=7 * 10**9, lora=False)
    assert not never.fsdp and "POLYTUNE_FSDP=never" in never.reason


@pytest.mark.parametrize("setting", ["auto", "always"])
def test_cpu_workers_use_ddp_and_say_why(setting):
    strategy = choose_strategy(setting, workers=2, device_memory=None, n_params=7 * 10**9, lora=False)
    assert not strategy.fsdp and strategy.name == "DDP" and "CPU workers" in strategy.reason


def test_the_tiny_model_is_counted_without_loading_it_and_wraps_its_decoder_layers(tiny):
    from transformers import AutoModelForCausalLM

    _, model_path = tiny
    shape = model_shape(str(model_path))
    assert shape.n_params == sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(model_path).parameters())
    args = fsdp_training_args(model_path, activation_checkpointing=True)
    assert args["fsdp"] is True and args["activation_checkpointing"] is False
    assert args["fsdp_config"]["transformer_layer_cls_to_wrap"] == ["LlamaDecoderLayer"]
    assert args["fsdp_config"]["version"] == 2 and args["fsdp_config"]["activation_checkpointing"] is True
    # Resume checkpoints: each rank its own shard, nothing gathered on rank 0.
    assert args["fsdp_config"]["state_dict_type"] == "SHARDED_STATE_DICT"
    # Rank 0 alone reads the weights; the others receive their shards (one CPU copy per node).
    assert args["fsdp_config"]["cpu_ram_efficient_loading"] is True
    # ... but not for a LoRA that trains tied embeddings (peft's re-tying fails on meta ranks).
    assert (
        fsdp_training_args(model_path, activation_checkpointing=True, efficient_loading=False)["fsdp_config"][
            "cpu_ram_efficient_loading"
        ]
        is False
    )


# ---- FSDP training under two gloo ranks ----

ROWS = 16  # batch 4: 4 steps an epoch
FULL_EPOCHS = 2
PAUSE_AFTER = 3  # the full run pauses after step 3 (saving at step 4) and resumes to step 8
LORA_PAUSE_AFTER = 1  # the LoRA run (4 steps) saves at step 2 and resumes to step 4


def _accelerate_shards_on_cpu() -> None:
    """accelerate turns a given FSDP plugin on for accelerator devices only; lift that gate."""
    from accelerate import state
    from accelerate.utils import DistributedType

    init = state.AcceleratorState.__init__

    def patched(self, *args, fsdp_plugin=None, **kwargs):
        init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
            self.distributed_type, self.fsdp_plugin = DistributedType.FSDP, fsdp_plugin
            # Every later AcceleratorState() copies the process state's type over its own.
            state.PartialState._shared_state["distributed_type"] = DistributedType.FSDP

    state.AcceleratorState.__init__ = patched


def _small_device(model_path) -> None:
    """A device exactly as large as a LoRA job's training state: 'auto' must shard both jobs."""
    from polytune.training import sharding

    need = memory_need(model_shape(str(model_path)).n_params, lora=True)
    sharding.device_memory = lambda: need


def _specs():
    from tests.training.support import resolved_spec

    full = resolved_spec(n_epochs=FULL_EPOCHS, batch_size=4, n_checkpoints=1, seed=5)
    lora = resolved_spec(n_epochs=1, batch_size=4, kind="lora", learning_rate=1e-2, n_checkpoints=0, seed=5)
    return full, lora


class _CountingStore(BlobStore):
    """The store, noting each folder this process fetches from it (to count the fetches)."""

    def __init__(self, url: str, log: Path):
        super().__init__(url)
        self.log = log

    def get_dir(self, key, local):
        with self.log.open("a") as f:
            f.write(key + "\n")
        return super().get_dir(key, local)


def _paused_and_resumed(train, spec, pause_after: int, tag: str, rank: int, blobs: BlobStore, out: Path):
    """Train `spec` on this rank until rank 0 pauses it after `pause_after` steps, store every
    rank's part of the sharded checkpoint it saves, then resume from it, fetched once per node,
    to the end. Rank 1 runs what a replica worker runs (ReplicaReporter: its part stored in the
    background); rank 0 stands for the StoreReporter, which needs a database: its own part, then
    waiting for the others', as StoreReporter._store_resume does."""
    import torch.distributed as dist

    from polytune.store.checkpoint_parts import resume_key, store_part, wait_for_parts
    from polytune.store.uploads import stage
    from polytune.training.distributed import ReplicaReporter
    from polytune.training.resume_fetch import resume_folder
    from polytune.training.train import TrainingStopped
    from tests.training.support import RecordingReporter

    work, step, job = out / f"rank{rank}" / tag, pause_after + 1, f"job-{tag}"
    first = RecordingReporter(stop_after=pause_after, stop_with="pause") if rank == 0 else ReplicaReporter(blobs, job)
    try:
        train(spec, work / "first", first)
        raise AssertionError("the pause did not stop training")
    except TrainingStopped:
        pass
    checkpoint = work / "first" / "trainer" / f"checkpoint-{step}"
    (out / f"{tag}-checkpoint-{rank}.json").write_text(
        json.dumps(sorted(p.relative_to(checkpoint).as_posix() for p in checkpoint.rglob("*") if p.is_file()))
    )
    key = resume_key(job, step)
    if rank == 0:
        store_part(blobs, stage(checkpoint, work / "staged"), key, 0)
        wait_for_parts(blobs, key, 2, timeout=120)
    else:
        first.uploads.close()
    dist.barrier()
    second = RecordingReporter()
    with resume_folder(blobs, key, job, step) as fetched:
        (out / f"{tag}-fetched-{rank}.json").write_text(
            json.dumps([str(fetched), sorted(p.name for p in fetched.rglob("*.distcp"))])
        )
        result = train(spec, work / "second", second, fetched)
    return first, second, result


def _rank(rank: int, port: int, data_dir: str, out: str) -> None:
    import torch.distributed as dist

    from polytune.data import to_trl_rows
    from polytune.catalog.models import Catalog
    from polytune.training.train import run_training
    from tests.training.support import DEMO_FILE

    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE="2",
        LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE="2",
        POLYTUNE_FSDP="auto",
    )
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    catalog = Catalog(Path(data_dir))
    entry = catalog.get("polytune-tiny")
    model_path = catalog.resolve_path(entry)
    _accelerate_shards_on_cpu()
    _small_device(model_path)
    rows = to_trl_rows(DEMO_FILE)[:ROWS]
    full, lora = _specs()
    # Each rank its own work dir, as each Ray Train worker has; each stores its part of the
    # sharded resume checkpoint under one key of a store that is not a local file system (read
    # through fsspec's dir:: wrapper, as s3:// would be), and the resume fetches that key once.
    blobs = _CountingStore(f"dir::file://{out}/store", Path(out) / f"fetches-{rank}")

    def train(spec, work, reporter, resume_from=None):
        return run_training(spec, entry, model_path, rows, None, work, reporter, resume_from=resume_from)

    first, second, resumed = _paused_and_resumed(train, full, PAUSE_AFTER, "full", rank, blobs, Path(out))
    lora_first, lora_second, tuned = _paused_and_resumed(train, lora, LORA_PAUSE_AFTER, "lora", rank, blobs, Path(out))
    if rank == 0:
        (Path(out) / "result.json").write_text(
            json.dumps(
                {
                    "events": first.events,
                    "full_losses": {s: m["train_loss"] for r in (first, second) for s, m in r.metrics_calls},
                    "full_final": str(resumed.final_dir),
                    "full_steps": resumed.steps,
                    "epoch_checkpoints": [str(p) for _, p, _ in second.checkpoints],
                    "lora_losses": {s: m["train_loss"] for r in (lora_first, lora_second) for s, m in r.metrics_calls},
                    "lora_final": str(tuned.final_dir),
                }
            )
        )
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_fsdp_on_two_ranks_matches_one_process_and_saves_what_reloads(tiny, catalog, demo_rows, tmp_path):
    import torch.multiprocessing as mp
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from polytune.training.train import run_training
    from tests.training.support import RecordingReporter

    entry, model_path = tiny
    mp.spawn(_rank, args=(_free_port(), str(catalog.data_dir), str(tmp_path)), nprocs=2)
    result = json.loads((tmp_path / "result.json").read_text())
    # The resume checkpoints are sharded: each rank wrote its own shard of the weights (a LoRA
    # job's: of the adapter) and of the optimizer state (rank 0 also the index), and nothing was
    # gathered whole for them.
    for tag in ("full", "lora"):
        written = [set(json.loads((tmp_path / f"{tag}-checkpoint-{r}.json").read_text())) for r in (0, 1)]
        for rank, files in enumerate(written):
            assert {f"pytorch_model_fsdp_0/__{rank}_0.distcp", f"optimizer_0/__{rank}_0.distcp"} <= files, files
            assert not any(n.endswith((".bin", ".safetensors")) for n in files), files
        assert "pytorch_model_fsdp_0/.metadata" in written[0] and "rng_state_1.pth" in written[1]
        # Both ranks read the one folder their node fetched, every shard in it.
        fetched = [json.loads((tmp_path / f"{tag}-fetched-{r}.json").read_text()) for r in (0, 1)]
        assert fetched[0] == fetched[1] and len(fetched[0][1]) == 4, fetched
    # One fetch per checkpoint on the node, by local rank 0.
    fetches = (tmp_path / "fetches-0").read_text().split()
    assert fetches == ["jobs/job-full/resume/step-4", "jobs/job-lora/resume/step-2"]
    assert not (tmp_path / "fetches-1").exists()
    # The event says which strategy and why.
    (strategy,) = [e for e in result["events"] if "workers train with" in e]
    assert strategy.startswith("2 workers train with FSDP") and "does not fit one device" in strategy

    # One process, the same global batch of 4, the same data and seed.
    full, lora = _specs()
    rows = demo_rows[:ROWS]
    alone = run_training(full, entry, model_path, rows, None, tmp_path / "alone", RecordingReporter())
    alone_lora_reporter = RecordingReporter()
    alone_lora = run_training(lora, entry, model_path, rows, None, tmp_path / "alone-lora", alone_lora_reporter)

    # Steps 1-4 before the pause, 5-8 after resuming from the FSDP checkpoint: the per-step
    # loss of one process at every step (measured: within 3e-7 relative, LoRA 2e-5).
    fsdp_losses = {int(k): v for k, v in result["full_losses"].items()}
    assert sorted(fsdp_losses) == list(range(1, 9)) and result["full_steps"] == alone.steps == 8
    for row in alone.metrics_rows:
        assert fsdp_losses[row["step"]] == pytest.approx(row["train_loss"], rel=1e-3), row["step"]
    # The LoRA job's too, steps 1-2 before its pause and 3-4 after.
    lora_losses = {int(k): v for k, v in result["lora_losses"].items()}
    assert sorted(lora_losses) == [1, 2, 3, 4]
    for step, metrics in alone_lora_reporter.metrics_calls:
        assert lora_losses[step] == pytest.approx(metrics["train_loss"], rel=1e-3), step
    worst = max(abs(fsdp_losses[r["step"]] / r["train_loss"] - 1) for r in alone.metrics_rows)
    worst_lora = max(abs(lora_losses[s] / m["train_loss"] - 1) for s, m in alone_lora_reporter.metrics_calls)
    print(f"largest relative loss difference: full {worst:.1e}, LoRA {worst_lora:.1e}")  # for docs/scaling.md

    # Rank 0 wrote whole tensors that from_pretrained loads: the weights one process reaches
    # (measured: within 1e-5, the LoRA adapter within 3e-4).
    final = Path(result["full_final"])
    reloaded = AutoModelForCausalLM.from_pretrained(final).state_dict()
    reference = load_file(str(alone.final_dir / "model.safetensors"))
    assert max(float((reloaded[k] - reference[k]).abs().max()) for k in reference) < 1e-3
    assert [Path(p).name for p in result["epoch_checkpoints"]] == ["step-8"]
    # The LoRA adapter alone, loadable onto the base model.
    adapter = load_file(str(Path(result["lora_final"]) / "adapter_model.safetensors"))
    assert any("lora_A" in k for k in adapter) and not any("layers.0.mlp.down_proj.weight" in k for k in adapter)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_path), result["lora_final"])
    expected = load_file(str(alone_lora.final_dir / "adapter_model.safetensors"))
    assert adapter.keys() == expected.keys()
    assert max(float((adapter[k] - expected[k]).abs().max()) for k in expected) < 1e-3
    assert any("lora_A" in name for name, _ in model.named_parameters())
