"""Directory mode's file handling: atomic replacement, and no write outliving a cancelled issue."""

from __future__ import annotations

import asyncio
import threading

import pytest

from payments.bridges.postgres import invoices as module
from payments.bridges.postgres.invoices import document_path, write_atomically


def test_documents_are_kept_by_year_and_number(tmp_path):
    assert document_path(tmp_path, 2026, "INV-2026-000007") == tmp_path / "2026" / "INV-2026-000007.pdf"


def test_a_write_creates_the_year_directory_and_leaves_only_the_file(tmp_path):
    path = document_path(tmp_path, 2026, "INV-2026-000001")

    write_atomically(path, b"%PDF first")

    assert path.read_bytes() == b"%PDF first"
    assert list(path.parent.iterdir()) == [path]
    assert oct(path.stat().st_mode & 0o777) == oct(module.FILE_MODE)


def test_a_write_replaces_a_leftover_file_of_the_same_number(tmp_path):
    path = document_path(tmp_path, 2026, "INV-2026-000001")
    write_atomically(path, b"%PDF from a rolled-back issue")

    write_atomically(path, b"%PDF of the invoice that kept the number")

    assert path.read_bytes() == b"%PDF of the invoice that kept the number"
    assert list(path.parent.iterdir()) == [path]


def test_a_failed_write_leaves_the_previous_file_and_no_temporary_one(tmp_path, monkeypatch):
    path = document_path(tmp_path, 2026, "INV-2026-000001")
    write_atomically(path, b"%PDF before")

    def refuse(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(module.os, "replace", refuse)
    with pytest.raises(OSError, match="No space"):
        write_atomically(path, b"%PDF after")

    assert path.read_bytes() == b"%PDF before"
    assert list(path.parent.iterdir()) == [path]


async def test_a_cancelled_write_is_waited_for_before_the_cancellation_goes_on():
    entered, gate = threading.Event(), threading.Event()
    finished: list[str] = []

    def work() -> str:
        entered.set()
        gate.wait(timeout=30)
        finished.append("written")
        return "written"

    task = asyncio.create_task(module._to_completion(work))
    assert await asyncio.to_thread(entered.wait, 30)
    task.cancel()
    for _ in range(5):
        await asyncio.sleep(0)  # zero: only lets the loop deliver the cancellation to the task

    still_waiting = not task.done()
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert still_waiting
    assert finished == ["written"]


async def test_an_uncancelled_write_returns_what_the_work_returned():
    assert await module._to_completion(lambda: 42) == 42
