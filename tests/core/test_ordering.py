import asyncio

from connectors.whatsapp.core.ordering import SenderQueues


async def test_jobs_of_one_sender_run_in_order_and_senders_run_concurrently() -> None:
    queues = SenderQueues()
    log: list[str] = []
    gate = asyncio.Event()

    def job(name: str, wait: bool = False):  # type: ignore[no-untyped-def]
        async def run() -> None:
            log.append(f"start {name}")
            if wait:
                await gate.wait()
            log.append(f"end {name}")

        return run

    queues.submit("ana", job("ana-1", wait=True))
    queues.submit("ana", job("ana-2"))
    queues.submit("bruno", job("bruno-1"))
    await asyncio.sleep(0.01)
    # Bruno is not held up by Ana's slow first job; Ana's second waits for her first.
    assert log == ["start ana-1", "start bruno-1", "end bruno-1"]
    gate.set()
    await queues.join()
    assert log[3:] == ["end ana-1", "start ana-2", "end ana-2"]
    assert queues.pending == 0


async def test_a_failing_job_is_logged_and_the_next_one_runs(caplog) -> None:  # type: ignore[no-untyped-def]
    queues = SenderQueues()
    done: list[int] = []

    async def boom() -> None:
        raise RuntimeError("bot crashed")

    async def fine() -> None:
        done.append(1)

    queues.submit("ana", boom)
    queues.submit("ana", fine)
    await queues.join()
    assert done == [1]
    assert "bot crashed" in caplog.text


async def test_drain_finishes_accepted_jobs_then_refuses_new_ones() -> None:
    queues = SenderQueues()
    done: list[int] = []

    async def slow() -> None:
        await asyncio.sleep(0.05)
        done.append(1)

    for _ in range(3):
        queues.submit("ana", slow)
    assert await queues.drain(timeout=5)
    assert done == [1, 1, 1]
    assert not queues.submit("ana", slow)


async def test_drain_reports_a_timeout() -> None:
    queues = SenderQueues()

    async def forever() -> None:
        await asyncio.sleep(10)

    queues.submit("ana", forever)
    assert not await queues.drain(timeout=0.05)


async def test_a_worker_cancelled_before_it_started_leaves_the_sender_usable(caplog) -> None:  # type: ignore[no-untyped-def]
    # What an event loop shutting down does to a worker created in its last moments: the task
    # is cancelled before its first step, so its own clean-up never runs.
    queues = SenderQueues()
    done: list[str] = []

    async def record() -> None:
        done.append("later")

    queues.submit("ana", record)
    [worker] = [t for t in asyncio.all_tasks() if t.get_name() == "whatsapp-sender-ana"]
    worker.cancel()
    await asyncio.wait_for(queues.join(), 2)  # it waited for ever
    assert (queues.pending, done) == (0, [])
    assert "1 accepted message(s) from ana were not processed" in caplog.text
    queues.submit("ana", record)  # the sender is not stuck behind the dead worker
    await asyncio.wait_for(queues.join(), 2)
    assert done == ["later"]
