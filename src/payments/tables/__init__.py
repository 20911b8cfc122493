"""Windowed state for agents ("tables", Faust style; DESIGN §4): pure window maths, the table API, and
the ``WindowStore`` Protocol with its in-memory implementation (the Redis one lives in ``bridges/redis``).
"""

from __future__ import annotations

from payments.tables.memory import MemoryWindowStore
from payments.tables.store import Kind, WindowStore
from payments.tables.table import Applied, Table
from payments.tables.windows import Hopping, Sliding, Span, Tumbling, Window

__all__ = [
    "Applied",
    "Hopping",
    "Kind",
    "MemoryWindowStore",
    "Sliding",
    "Span",
    "Table",
    "Tumbling",
    "Window",
    "WindowStore",
]
