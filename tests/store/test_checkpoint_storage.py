"""A checkpoint stored once: its .tar download is the stored folder archived as it streams (exact
size known first, the bytes tarfile reads back); resume checkpoints staged as hard links and
uploaded in the background, in order, the newest upload's failure kept for the job to act on."""

from __future__ import annotations

import io
import tarfile
import threading

import pytest

from polytune.store import folder_tar
from polytune.store.blobs import BlobStore
from polytune.store.uploads import BackgroundUploads, stage


@pytest.fixture
def store(tmp_path):
    blobs = BlobStore(str(tmp_path / "blobs"))
    files = {
        "model.safetensors": b"w" * 5000,
        "config.json": b"{}",
        "empty.txt": b"",
        "exact.bin": b"x" * 512,
        # A name longer than ustar's 100 characters takes a pax header.
        "nested/" + "n" * 120 + ".json": b"long name",
    }
    for name, data in files.items():
        with blobs.writer(f"models/job-1/ckpt-step-3/{name}") as f:
            f.write(data)
    return blobs, files


def test_the_stored_folder_streams_as_a_tar_of_the_announced_size(store):
    blobs, files = store
    folder = folder_tar.members(blobs, "models/job-1/ckpt-step-3", "ckpt-step-3")
    data = b"".join(folder_tar.iter_tar(blobs, folder))
    assert len(data) == folder_tar.tar_size(folder)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        read = {m.name.removeprefix("ckpt-step-3/"): tar.extractfile(m).read() for m in tar.getmembers()}
    assert read == files
    # Nothing was written to the store for it: the folder is the one copy.
    assert not blobs.exists("files")


def test_a_half_written_blob_is_not_part_of_the_archive(store):
    blobs, files = store
    pending = blobs.begin("models/job-1/ckpt-step-3/late.bin")
    pending.write(b"partial")
    names = [m.name for m in folder_tar.members(blobs, "models/job-1/ckpt-step-3", "c")]
    assert len(names) == len(files) and not any("partial" in n for n in names)
    pending.abort()


def test_staging_links_survive_the_trainer_rotating_its_folder(tmp_path):
    folder = tmp_path / "trainer" / "checkpoint-4"
    (folder / "sub").mkdir(parents=True)
    (folder / "optimizer.pt").write_bytes(b"o" * 100)
    (folder / "sub" / "rng.pth").write_bytes(b"r")
    staged = stage(folder, tmp_path / "trainer" / ".uploading" / "step-4")
    assert (staged / "optimizer.pt").stat().st_ino == (folder / "optimizer.pt").stat().st_ino  # no bytes copied
    import shutil

    shutil.rmtree(folder)  # save_total_limit rotation
    assert (staged / "optimizer.pt").read_bytes() == b"o" * 100 and (staged / "sub" / "rng.pth").read_bytes() == b"r"


def test_background_uploads_run_in_order_off_the_caller_and_keep_the_newest_failure():
    uploads = BackgroundUploads()
    release, done, threads = threading.Event(), [], set()

    def upload(n):
        def run():
            release.wait(10)
            threads.add(threading.current_thread().name)
            if n == 2:
                raise OSError(28, "No space left on device")
            done.append(n)

        return run

    for n in (1, 2):
        uploads.submit(upload(n))
    assert done == []  # the caller (the training loop) did not wait for them
    release.set()
    error = uploads.wait()
    assert done == [1] and isinstance(error, OSError) and error.errno == 28
    assert threads and all(name.startswith("polytune-upload") for name in threads)
    uploads.submit(upload(3))
    assert uploads.wait() is None and done == [1, 3]  # a later success supersedes the failure
    uploads.close()


class _FailingStore(BlobStore):
    """Storage that refuses writes under one prefix (a fault injected into the store, not the
    reporter under test)."""

    def __init__(self, url: str, refuse: str, errno_: int):
        super().__init__(url)
        self.refuse, self.errno_ = refuse, errno_

    def put_dir(self, local, key):
        if key.startswith(self.refuse):
            raise OSError(self.errno_, "refused by the test's storage")
        super().put_dir(local, key)


@pytest.fixture
def job_db(database_url):
    from polytune.store.db import Database
    from tests.rows import add_job, add_org
    from polytune.domain.job import JobStatus

    db = Database(database_url)
    db.migrate()
    yield db, add_job(db, add_org(db), JobStatus.RUNNING)
    db.dispose()


def _reporter(db, job_id, blobs):
    from polytune.store.worker import StoreReporter

    return StoreReporter(
        db, blobs, job_id=job_id, org_id="org-x", base_model="polytune-tiny", model_name="m", adapter_kind="full"
    )


def _trainer_folder(tmp_path, step):
    folder = tmp_path / "trainer" / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "optimizer.pt").write_bytes(b"o" * 1000)
    return folder


def _job(db, job_id):
    import sqlalchemy as sa

    from polytune.store import tables as t

    with db.session() as s:
        row = s.execute(sa.select(t.Job.resume_step, t.Job.resume_key).where(t.Job.id == job_id)).one()
        events = [
            (e.level, e.message, e.data)
            for e in s.scalars(sa.select(t.JobEvent).where(t.JobEvent.job_id == job_id).order_by(t.JobEvent.seq))
        ]
    return row, events


@pytest.mark.parametrize("errno_", [5, 28])  # EIO: reported, training goes on; ENOSPC: the job stops
def test_a_failed_resume_upload_is_reported_and_the_previous_checkpoint_stays(job_db, tmp_path, errno_):
    db, job_id = job_db
    blobs = _FailingStore(str(tmp_path / "blobs"), f"jobs/{job_id}/resume/step-8", errno_)
    reporter = _reporter(db, job_id, blobs)
    reporter.resume_checkpoint(4, _trainer_folder(tmp_path, 4))
    reporter.resume_checkpoint(8, _trainer_folder(tmp_path, 8))
    with pytest.raises(OSError):
        reporter.wait_uploads(strict=True)  # a pause at step 8 would need this one
    (step, key), events = _job(db, job_id)
    assert (step, key) == (4, f"jobs/{job_id}/resume/step-4")  # the previous one in force, intact
    assert blobs.exists(f"{key}/optimizer.pt") and not blobs.exists(f"jobs/{job_id}/resume/step-8")
    stored, failed = events
    assert stored[1] == "Resume checkpoint at step 4 stored" and stored[2]["bytes"] == 1000
    assert failed[0] == "error" and "step 8 failed" in failed[1] and "refused" in failed[1]
    assert not (tmp_path / "trainer" / ".uploading").exists() or not any(
        (tmp_path / "trainer" / ".uploading").iterdir()
    )
    if errno_ == 28:  # storage full: the next step's stop poll raises it, and the job fails
        with pytest.raises(OSError) as caught:
            reporter.stop_request()
        assert caught.value.errno == 28
    else:
        assert reporter.stop_request() is None
    reporter.uploads.close()


# ---- a multi-worker job's checkpoint: every rank's part under one key (checkpoint_parts.py) ----


def _rank_folder(tmp_path, rank, step):
    folder = tmp_path / f"rank{rank}" / "trainer" / f"checkpoint-{step}"
    (folder / "pytorch_model_fsdp_0").mkdir(parents=True)
    (folder / "pytorch_model_fsdp_0" / f"__{rank}_0.distcp").write_bytes(bytes([rank]) * 100)
    (folder / f"rng_state_{rank}.pth").write_bytes(b"r")
    return folder


def test_rank_0_records_the_checkpoint_only_once_every_rank_stored_its_part(job_db, tmp_path):
    from polytune.store.checkpoint_parts import resume_key, store_part

    db, job_id = job_db
    blobs = BlobStore(str(tmp_path / "blobs"))
    reporter = _reporter(db, job_id, blobs)
    reporter.ranks = 2
    key = resume_key(job_id, 4)
    reporter.resume_checkpoint(4, _rank_folder(tmp_path, 0, 4))
    for _ in range(200):  # rank 0's own part is stored first ...
        if blobs.exists(f"{key}/rng_state_0.pth"):
            break
        threading.Event().wait(0.05)
    # ... but the job's resume point stays unset: rank 1's shard is not there yet.
    assert _job(db, job_id)[0] == (None, None)
    store_part(blobs, _rank_folder(tmp_path, 1, 4), key, 1)
    reporter.wait_uploads(strict=True)
    (step, stored_key), events = _job(db, job_id)
    assert (step, stored_key) == (4, key) and events[-1][1] == "Resume checkpoint at step 4 stored"
    assert events[-1][2]["bytes"] == 2 * 101  # every rank's part: its shard and its RNG state
    for rank in (0, 1):  # one folder with both shards: what a resume on any node fetches
        assert blobs.exists(f"{key}/pytorch_model_fsdp_0/__{rank}_0.distcp") and blobs.exists(
            f"{key}/rng_state_{rank}.pth"
        )
    # store_part is given the staged folder (hard links), and removes it once stored.
    assert not (tmp_path / "rank1" / "trainer" / "checkpoint-4").exists()
    reporter.uploads.close()


def test_a_rank_that_cannot_store_its_part_fails_the_checkpoint_at_once(job_db, tmp_path):
    from polytune.store.checkpoint_parts import MissingPart, resume_key, store_part, wait_for_parts

    db, job_id = job_db
    good = BlobStore(str(tmp_path / "blobs"))
    refusing = _FailingStore(str(tmp_path / "blobs"), f"jobs/{job_id}/resume/step-4", 5)
    key = resume_key(job_id, 4)
    with pytest.raises(OSError):
        store_part(refusing, _rank_folder(tmp_path, 1, 4), key, 1)  # its marker says so
    reporter = _reporter(db, job_id, good)
    reporter.ranks = 2
    reporter.resume_checkpoint(4, _rank_folder(tmp_path, 0, 4))
    with pytest.raises(MissingPart, match="rank 1 could not store"):
        reporter.wait_uploads(strict=True)
    (step, _), events = _job(db, job_id)
    assert step is None and events[-1][0] == "error" and not good.exists(key)
    # A rank that never answers: rank 0 gives up after the timeout, naming it.
    with pytest.raises(MissingPart, match=r"rank\(s\) \[1, 2\]"):
        wait_for_parts(good, resume_key(job_id, 8), 3, timeout=0.2, poll=0.05)
    reporter.uploads.close()
