"""Claims that carry what the worker has free (``free_gpu_ids``/``free_slots``, sent by
``whirr worker --server``): the server hands out only what is free by both counts, through
the same ``Jobs.claim`` a local worker uses; a busy worker's long-poll ends when one of its
jobs ends or it is asked to drain; workers that send neither keep the old behaviour."""

from __future__ import annotations

import threading
import time

from server_process import ServerProcess

from whirr.client import WhirrClient
from whirr.services import Workers
from whirr.store import open_store
from whirr.wire import schemas


def test_a_claim_gives_only_gpus_free_by_the_workers_count_and_the_servers(
    client: WhirrClient,
) -> None:
    client.cancel_all_queued()
    client.register_worker("w-count", "box", [0, 1], slots=0)
    first, second, third = (client.submit(["true"], "/tmp", gpus=1).job_id for _ in range(3))
    # The server sees both GPUs free; the worker says only GPU 1 is.
    job = client.claim("w-count", free_gpu_ids=[1], free_slots=0)
    assert job is not None and (job.id, job.gpu_ids) == (first, [1])
    # The worker says both are free; the server knows it holds GPU 1.
    job = client.claim("w-count", free_gpu_ids=[0, 1], free_slots=0)
    assert job is not None and (job.id, job.gpu_ids) == (second, [0])
    assert client.claim("w-count", free_gpu_ids=[0, 1], free_slots=0) is None
    assert client.get_job(third).status == "queued"
    client.cancel_all_queued()


def test_a_two_gpu_job_goes_to_a_worker_with_two_free(client: WhirrClient) -> None:
    client.cancel_all_queued()
    client.register_worker("w-pair", "box", [0, 1], slots=1)
    job_id = client.submit(["true"], "/tmp", gpus=2).job_id
    assert client.claim("w-pair", free_gpu_ids=[1], free_slots=1) is None
    job = client.claim("w-pair", free_gpu_ids=[0, 1], free_slots=1)
    assert job is not None and (job.id, job.gpu_ids) == (job_id, [0, 1])


def test_an_unregistered_worker_offers_what_it_says_is_free(client: WhirrClient) -> None:
    client.cancel_all_queued()
    job_id = client.submit(["true"], "/tmp", gpus=1).job_id
    job = client.claim("w-unregistered", free_gpu_ids=[3], free_slots=0)
    assert job is not None and (job.id, job.gpu_ids) == (job_id, [3])


def test_a_busy_workers_long_poll_ends_when_one_of_its_jobs_ends(client: WhirrClient) -> None:
    client.cancel_all_queued()
    client.register_worker("w-busy", "box", [], slots=2)
    held = client.submit(["true"], "/tmp").job_id
    job = client.claim("w-busy", free_gpu_ids=[], free_slots=2)
    assert job is not None and job.id == held
    answers: list[schemas.ClaimResponse] = []

    def poll() -> None:
        answers.append(client.claim_answer("w-busy", wait=30, free_gpu_ids=[], free_slots=1))

    waiter = threading.Thread(target=poll)
    started = time.monotonic()
    waiter.start()
    time.sleep(0.5)  # the claim is now waiting on the server (as in test_api_jobs)
    client.complete(held, "w-busy", job.attempt, 0)
    waiter.join(timeout=15)
    assert not waiter.is_alive(), "the long-poll went on although the worker's job ended"
    assert answers[0].job is None and not answers[0].draining
    assert time.monotonic() - started < 15


def test_a_draining_worker_is_told_so_by_its_claim(
    client: WhirrClient, server: ServerProcess
) -> None:
    client.cancel_all_queued()
    client.register_worker("w-drain", "box", [], slots=1)
    # `whirr drain` on the server's own log (a second process on its SQLite file).
    store = open_store(f"sqlite://{server.data_dir / 'whirr.db'}")
    try:
        Workers(store).drain("w-drain")
    finally:
        store.close()
    client.submit(["true"], "/tmp")
    answer = client.claim_answer("w-drain", wait=10, free_gpu_ids=[], free_slots=1)
    assert (answer.job, answer.draining) == (None, True)
    # A worker written for the original API is simply given nothing.
    assert client.claim_answer("w-drain", wait=0) == schemas.ClaimResponse(job=None)
    client.cancel_all_queued()
