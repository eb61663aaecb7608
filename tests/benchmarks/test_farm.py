"""The target farm answers each path as ``behaviour`` says (the pipeline's truth)."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

from benchmarks.farm import PAGE_BYTES, PAGE_KEYWORD, behaviour, farm_running


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def first_path(kind: str) -> int:
    return next(n for n in range(1000) if behaviour(n).kind == kind)


def test_the_farm_answers_each_path_as_its_behaviour_says():
    fast, error, refused = first_path("fast"), first_path("error"), first_path("refused")

    with farm_running(processes=1) as (farm, _pids):
        assert status_of(farm.url(fast)) == 200
        assert status_of(farm.url(error)) == behaviour(error).status
        assert status_of(f"http://127.0.0.1:{farm.port}/nowhere") == 404
        refused_port = int(farm.url(refused).split(":")[2].split("/")[0])
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", refused_port), timeout=2).close()


def test_the_farm_page_paths_end_their_1_mib_page_with_the_keyword():
    fast, error = first_path("fast"), first_path("error")

    with farm_running(processes=1) as (farm, _pids):
        with urllib.request.urlopen(farm.page_url(fast), timeout=5) as response:  # noqa: S310
            page = response.read()
        assert status_of(farm.page_url(error)) == behaviour(error).status

    assert len(page) == PAGE_BYTES
    assert page.rstrip().endswith(f"<p>{PAGE_KEYWORD}</p></body></html>".encode())
    assert page.count(PAGE_KEYWORD.encode()) == 1
