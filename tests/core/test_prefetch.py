from __future__ import annotations

import threading

import pytest

from core.prefetch import prefetched


class Broken(Exception):
    pass


def test_it_yields_the_items_in_order_each_made_on_the_helper_thread():
    made_on: list[str] = []

    def source():
        for n in range(5):
            made_on.append(threading.current_thread().name)
            yield n

    assert list(prefetched(source(), name="helper")) == [0, 1, 2, 3, 4]
    assert all(name.startswith("helper") for name in made_on)


def test_it_makes_the_next_item_while_the_caller_holds_one_and_no_more():
    made: list[int] = []
    second_made = threading.Event()

    def source():
        for n in range(3):
            made.append(n)
            if n == 1:
                second_made.set()
            yield n

    items = prefetched(source(), name="helper")

    assert next(items) == 0
    assert second_made.wait(5)  # made while the caller holds the first
    assert made == [0, 1]  # the third waits until the caller takes the second
    assert list(items) == [1, 2]


def test_an_error_making_an_item_is_raised_when_the_caller_asks_for_it():
    def source():
        yield 1
        raise Broken

    items = prefetched(source(), name="helper")

    assert next(items) == 1
    with pytest.raises(Broken):
        next(items)


def test_a_caller_that_stops_early_leaves_the_source_after_the_item_in_flight():
    made: list[int] = []

    def source():
        for n in range(10):
            made.append(n)
            yield n

    items = prefetched(source(), name="helper")
    assert next(items) == 0
    items.close()  # waits for item 1, being made, and makes no other

    assert made == [0, 1]
