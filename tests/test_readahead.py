"""ReadAhead: a producer thread a few items ahead of its consumer (open
data's records query). Order, errors and an early stop, whatever the producer does."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xinyong.services.readahead import ReadAhead


@given(st.lists(st.integers()), st.integers(min_value=1, max_value=4))
def test_items_come_in_order_and_all(items: list[int], ahead: int) -> None:
    with ReadAhead(lambda: iter(items), ahead=ahead) as produced:
        assert list(produced) == items


def test_a_producers_error_is_raised_in_the_consumer_after_what_came_before() -> None:
    def failing():
        yield 1
        yield 2
        raise ValueError("row 3: unreadable")

    taken = []
    with pytest.raises(ValueError, match="row 3"), ReadAhead(failing) as produced:
        for item in produced:
            taken.append(item)
    assert taken == [1, 2]


def test_a_consumer_that_stops_early_stops_the_producer() -> None:
    made = []

    def endless():
        n = 0
        while True:
            made.append(n)
            yield n
            n += 1

    with ReadAhead(endless, ahead=2) as produced:
        for item in produced:
            if item == 3:
                break
    time.sleep(0.3)  # the producer, had it not stopped, would keep making items
    assert len(made) <= 4 + 2 + 1
    assert not any(t.name == "read-ahead" for t in threading.enumerate())


def test_the_producer_runs_ahead_on_its_own_thread() -> None:
    threads = set()

    def where():
        for n in range(3):
            threads.add(threading.current_thread().name)
            yield n

    with ReadAhead(where, name="validation") as produced:
        assert list(produced) == [0, 1, 2]
    assert threads == {"validation"}
