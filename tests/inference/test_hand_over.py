"""HandOver: items put from another thread are taken a few at a time, at most once an interval,
the first and the last at once."""

from __future__ import annotations

import asyncio
import threading
import time

from polytune.inference.hand_over import HandOver


def takes(puts: list[tuple[float, int, bool]], interval: float) -> list[tuple[float, list[int]]]:
    """A thread puts (delay, item, last) in turn; returns each take with its time from the start."""

    async def main():
        loop = asyncio.get_running_loop()
        hand_over: HandOver[int] = HandOver(loop, interval)

        def engine():
            for delay, item, last in puts:
                time.sleep(delay)
                hand_over.put(item, last=last)

        start = time.monotonic()
        threading.Thread(target=engine, daemon=True).start()
        out, seen = [], 0
        while seen < len(puts):
            items = await hand_over.take()
            out.append((time.monotonic() - start, items))
            seen += len(items)
        return out

    return asyncio.run(main())


def test_without_an_interval_each_take_is_what_arrived():
    got = takes([(0.05, i, i == 4) for i in range(5)], 0.0)
    assert [items for _, items in got] == [[0], [1], [2], [3], [4]]


def test_the_first_item_at_once_then_at_most_one_take_an_interval():
    # An item every 10 ms against a 0.3 s interval.
    got = takes([(0.01, i, False) for i in range(40)] + [(0.01, 40, True)], 0.3)
    assert got[0][1] == [0] and got[0][0] < 0.2
    assert [i for _, items in got for i in items] == list(range(41))
    assert all(b - a >= 0.3 - 0.01 for (a, _), (b, _) in zip(got[:-1], got[1:-1], strict=False))
    assert 2 <= len(got) <= 6  # ~0.45 s of items: a take at 0, ~0.3, ~0.6 (a slow machine: more), the last


def test_the_last_item_is_handed_over_at_once():
    # A request that ends 20 ms after its first token does not wait out a 5 s interval.
    got = takes([(0.0, 0, False), (0.01, 1, False), (0.01, 2, True)], 5.0)
    assert [items for _, items in got] == [[0], [1, 2]]
    assert got[-1][0] < 2.0


def test_an_item_that_waits_is_not_held_past_the_interval():
    # The second item comes 20 ms after the first take; the third only after 3 s (a stalled
    # engine): the second goes out when its interval is up, not with the third.
    got = takes([(0.0, 0, False), (0.02, 1, False), (3.0, 2, True)], 0.2)
    assert [items for _, items in got] == [[0], [1], [2]]
    assert got[1][0] < 1.0
