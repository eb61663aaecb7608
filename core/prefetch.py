"""Items made one ahead on a helper thread, while the caller works on the one before.

For a loop that alternates Python work with waiting on MySQL: mysqlclient releases
the GIL while a query runs, so a helper thread can make the next item (take and parse
a batch, render a statement) on the other core meanwhile. The helper makes at most one
item ahead, and only when the caller has taken the one before; so a source that
decides whether to go on (a deadline, a stop signal) decides before making the next.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar, cast

T = TypeVar("T")

_DONE = object()


def prefetched(items: Iterable[T], *, name: str) -> Generator[T, None, None]:
    """The items of ``items``, in order, each made (``next``) on a helper thread named
    ``name`` while the caller works on the one before.

    An exception raised making an item is raised to the caller when it asks for that
    item. When the caller stops early (an exception of its own, or closing this
    iterator), the item being made is waited for and dropped, and ``items`` is left
    where it stands: it is not closed, nor made again.
    """
    source = iter(items)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) as helper:
        upcoming: Future[Any] = helper.submit(next, source, _DONE)
        while (item := upcoming.result()) is not _DONE:
            upcoming = helper.submit(next, source, _DONE)
            yield cast(T, item)
