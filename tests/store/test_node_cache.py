"""The node's cache of fetched models pruned to a size cap, least recently used first, never a
copy a live process holds (a training worker's base model) nor one just used (store/node_cache.py),
through the two ways copies are made: base models from object storage (catalog/stored.py) and
fine-tuned models fetched for serving (inference/weights.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from polytune.catalog.models import Catalog
from polytune.domain.ids import new_id
from polytune.inference.weights import fetch_model_dir
from polytune.store import node_cache
from polytune.store.blobs import BlobStore

KB = 1024


def _copy(root: Path, name: str, size: int, used_ago: float) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"w" * size)
    node_cache.touch(folder)
    past = time.time() - used_ago
    os.utime(node_cache.sidecar(folder), (past, past))
    return folder


def test_the_least_recently_used_copies_go_first_until_under_the_cap(tmp_path):
    root = tmp_path / "cache"
    oldest = _copy(root, "models/a/final", 40 * KB, used_ago=3 * 3600)
    middle = _copy(root, "base-models/b/v1", 40 * KB, used_ago=2 * 3600)
    newest = _copy(root, "models/c/final", 40 * KB, used_ago=3600)
    (root / "export-tmp").mkdir()  # not a copy (no sidecar): never counted nor removed
    (root / "export-tmp" / "big.bin").write_bytes(b"x" * 200 * KB)
    assert node_cache.prune(root, 0) == []  # 0: no cap
    assert node_cache.prune(root, 90 * KB) == [oldest]
    assert not oldest.exists() and not node_cache.sidecar(oldest).exists()
    assert node_cache.prune(root, 30 * KB) == [middle, newest]
    assert (root / "export-tmp" / "big.bin").exists()


def test_a_copy_just_used_stays_over_the_cap(tmp_path):
    root = tmp_path / "cache"
    recent = _copy(root, "models/a/final", 40 * KB, used_ago=10)
    assert node_cache.prune(root, KB) == [] and recent.exists()
    # ... until it has not been used for the grace period.
    assert node_cache.prune(root, KB, now=time.time() + node_cache.GRACE_SECONDS) == [recent]


def test_a_copy_held_by_a_live_process_is_never_removed(tmp_path):
    root = tmp_path / "cache"
    held = _copy(root, "base-models/big/v1", 40 * KB, used_ago=3 * 3600)
    free = _copy(root, "base-models/small/v1", 10 * KB, used_ago=2 * 3600)
    # Another process holds it, as a training worker holds its base model for its job.
    worker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from polytune.store import node_cache; "
            f"node_cache.hold(Path({str(held)!r})); print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert worker.stdout.readline().strip() == "held"
        assert node_cache.prune(root, KB) == [free]  # the older one is in use: the next goes
        assert held.exists()
    finally:
        worker.stdin.close()
        worker.wait(30)
    # The worker is gone, and its hold with it (also had it been killed: the lock is the process's).
    assert node_cache.prune(root, KB) == [held]


def _store_with_models(tmp_path, tiny, names):
    url = f"memory://cache-{new_id('t', 8)}"  # stands for s3:// (not a local file system)
    server = Catalog(tmp_path / "server", BlobStore(url))
    for name in names:
        server.add(name, tiny[1])
    return url


def _age(folder: Path) -> None:
    past = time.time() - 2 * node_cache.GRACE_SECONDS
    os.utime(node_cache.sidecar(folder), (past, past))


def test_fetching_a_base_model_prunes_the_node_cache_but_not_the_model_a_job_trains(tmp_path, tiny):
    url = _store_with_models(tmp_path, tiny, ["one", "two", "three"])
    size = sum(p.stat().st_size for p in Path(tiny[1]).rglob("*") if p.is_file())
    # Room for two copies.
    node = Catalog(tmp_path / "node", BlobStore(url), cache_bytes=int(2.5 * size))
    training = Path(node.resolve_path(node.get("one"), keep=True))  # a worker training on it
    idle = Path(node.resolve_path(node.get("two")))
    _age(training)
    _age(idle)
    third = Path(node.resolve_path(node.get("three")))  # the fetch that goes over the cap
    assert training.is_dir() and third.is_dir() and not idle.exists()
    # A pruned model is fetched again when it is next needed.
    assert Path(node.resolve_path(node.get("two"))) == idle and (idle / "config.json").is_file()
    node_cache.release(training)


def test_fetching_a_model_to_serve_prunes_the_node_cache(tmp_path, tiny):
    blobs = BlobStore(f"memory://serve-{new_id('t', 8)}")
    for job in ("a", "b"):
        blobs.put_dir(Path(tiny[1]), f"models/{job}/final")
    size = sum(p.stat().st_size for p in Path(tiny[1]).rglob("*") if p.is_file())
    root = tmp_path / "cache"
    first = fetch_model_dir(blobs, root, "models/a/final", max_bytes=int(1.5 * size))
    _age(first)
    second = fetch_model_dir(blobs, root, "models/b/final", max_bytes=int(1.5 * size))
    assert not first.exists() and (second / "config.json").is_file()


def _at_once(n: int, fn) -> list[BaseException]:
    """Run `fn` in n threads released together; the errors they raised."""
    barrier, errors = threading.Barrier(n), []

    def run() -> None:
        barrier.wait()
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_eight_requests_fetching_a_model_just_trained_all_get_it(tmp_path, tiny):
    # The demo's first chat requests for its fine-tuned model: eight at once, each fetching the
    # model with the cache cap on. A fetch pruning while another staged its copy once answered
    # "weights missing" (the prune's walk met a staging folder as it was renamed away).
    blobs = BlobStore(f"memory://fetch-{new_id('t', 8)}")
    blobs.put_dir(Path(tiny[1]), "models/ftjob-x/ckpt-step-30")
    for round_ in range(8):
        root = tmp_path / f"cache-{round_}"
        errors = _at_once(8, lambda: fetch_model_dir(blobs, root, "models/ftjob-x/ckpt-step-30", max_bytes=100 << 30))
        assert errors == []
        folder = root / "models/ftjob-x/ckpt-step-30"
        assert (folder / "config.json").is_file() and node_cache.sidecar(folder).is_file()
        assert [p.name for p in folder.parent.iterdir() if ".partial-" in p.name] == []
    assert node_cache._held == {}  # every hold released, once each


def test_prunes_at_once_remove_each_copy_once(tmp_path):
    for round_ in range(40):
        root = tmp_path / f"cache-{round_}"
        old = [_copy(root, f"models/{i}/final", KB, used_ago=3 * 3600) for i in range(4)]
        removed: list[Path] = []
        errors = _at_once(2, lambda: removed.extend(node_cache.prune(root, 1)))
        assert errors == []
        assert sorted(removed) == sorted(old)  # each by one of the two
        assert not any(f.exists() or node_cache.sidecar(f).exists() for f in old)
