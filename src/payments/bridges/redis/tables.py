"""``RedisWindowStore``: the ``WindowStore`` of the workers, one Lua script per add.

Keys (after ``key_prefix``; table names and keys are percent-escaped, so a key such as an IPv6 address
never adds a ``:`` and never carries a glob or hash-tag character):

- ``table:{name}:{key}:{start_ms}``: a tumbling or hopping window's value, a counter (COUNT, SUM) or a
  set of members (DISTINCT); ``...:{start_ms}:ids`` is the set of event ids applied to it.
- ``table:{name}:{key}:events``: a sliding table's events, a sorted set of event id -> event time;
  ``...:payloads`` is a hash of event id -> amount (SUM) or member (DISTINCT).

Each add is one script: check-and-record the event id, update every live window, trim what has expired,
set the time to live, return the value read. Times to live are relative to the table's clock
(``expires_at - now``, PEXPIRE), not absolute (PEXPIREAT): Redis then forgets a cell after exactly the
time the table still needed it, whatever the skew between a worker's clock and Redis's, and a test
clock set to another year works the same. What is live is decided by the table's clock alone; the TTLs
only keep memory bounded. Reads (``read``) are one script call; ``cells`` and ``clear`` scan the table's
keys, which is for tests, replays and operators, never for the hot path.

Lua numbers are doubles: event times and sliding sums are exact below 2**53 (an amount of
9 * 10**15 minor units); window sums use INCRBY and are exact 64-bit integers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import quote, unquote

from redis.asyncio import Redis
from redis.exceptions import RedisError

from payments.domain.errors import DependencyUnavailable
from payments.tables.store import Added, Cell, Change, Kind, Layout, TableSpec
from payments.tables.windows import Span

#: The value of a window key (``kind`` is ARGV[1] of every script).
_READ_WINDOW_LUA: Final = """
local function read_window(kind, key)
    if kind == 'distinct' then
        return redis.call('SCARD', key)
    end
    return tonumber(redis.call('GET', key) or '0')
end
"""

#: KEYS: each live window's value key then its ids key, then the read key if ARGV[4] is '1'.
#: ARGV: kind, event id, payload, '1' to read, then each window's time to live in ms.
_ADD_TO_WINDOWS: Final = (
    _READ_WINDOW_LUA
    + """
local kind, id, payload = ARGV[1], ARGV[2], ARGV[3]
local reads = ARGV[4] == '1'
local windows = (#KEYS - (reads and 1 or 0)) / 2
local counted = 0
for i = 1, windows do
    local value_key, ids_key, ttl = KEYS[2 * i - 1], KEYS[2 * i], ARGV[4 + i]
    if redis.call('SADD', ids_key, id) == 1 then
        counted = 1
        if kind == 'distinct' then
            redis.call('SADD', value_key, payload)
        else
            redis.call('INCRBY', value_key, payload)
        end
        redis.call('PEXPIRE', value_key, ttl)
        redis.call('PEXPIRE', ids_key, ttl)
    end
end
local value = 0
if reads then
    value = read_window(kind, KEYS[#KEYS])
end
return {counted, value}
"""
)

#: KEYS: the windows' value keys. ARGV: kind.
_READ_WINDOWS: Final = (
    _READ_WINDOW_LUA
    + """
local values = {}
for i = 1, #KEYS do
    values[i] = read_window(ARGV[1], KEYS[i])
end
return values
"""
)

#: ``events_value``: a sliding window's value from the events with times in [first, last].
#: ``forget``: drop the events at or before ``cutoff`` and their payloads.
_EVENTS_LUA: Final = """
local function events_value(kind, events, payloads, first, last)
    if kind == 'count' then
        return redis.call('ZCOUNT', events, first, last)
    end
    local ids = redis.call('ZRANGEBYSCORE', events, first, last)
    local total, seen, distinct = 0, {}, 0
    -- unpack() is limited by Lua's C stack: fetch payloads a thousand at a time.
    for i = 1, #ids, 1000 do
        local values = redis.call('HMGET', payloads, unpack(ids, i, math.min(i + 999, #ids)))
        for j = 1, #values do
            local v = values[j]
            if kind == 'sum' then
                total = total + tonumber(v)
            elseif not seen[v] then
                seen[v] = true
                distinct = distinct + 1
            end
        end
    end
    if kind == 'sum' then
        return total
    end
    return distinct
end

local function forget(events, payloads, cutoff)
    local expired = redis.call('ZRANGEBYSCORE', events, '-inf', cutoff)
    if #expired == 0 then
        return
    end
    redis.call('ZREMRANGEBYSCORE', events, '-inf', cutoff)
    for i = 1, #expired, 1000 do
        redis.call('HDEL', payloads, unpack(expired, i, math.min(i + 999, #expired)))
    end
end
"""

#: KEYS: events, payloads.
#: ARGV: kind, event id, payload, event time, '1' if the event is live, forget-up-to time,
#: lifetime, now, then the read's first and last event times (both '' for no read).
_ADD_EVENT: Final = (
    _EVENTS_LUA
    + """
local kind, id, payload = ARGV[1], ARGV[2], ARGV[3]
forget(KEYS[1], KEYS[2], ARGV[6])
local counted = 0
if ARGV[5] == '1' and redis.call('ZADD', KEYS[1], 'NX', ARGV[4], id) == 1 then
    counted = 1
    if kind ~= 'count' then
        redis.call('HSET', KEYS[2], id, payload)
    end
end
-- Both keys live as long as their newest event.
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if newest[2] then
    local ttl = tonumber(newest[2]) + tonumber(ARGV[7]) - tonumber(ARGV[8])
    redis.call('PEXPIRE', KEYS[1], ttl)
    redis.call('PEXPIRE', KEYS[2], ttl)
end
local value = 0
if ARGV[9] ~= '' then
    value = events_value(kind, KEYS[1], KEYS[2], ARGV[9], ARGV[10])
end
return {counted, value}
"""
)

#: KEYS: events, payloads. ARGV: kind, then each window's first and last event times.
_READ_EVENTS: Final = (
    _EVENTS_LUA
    + """
local values = {}
for i = 2, #ARGV, 2 do
    values[i / 2] = events_value(ARGV[1], KEYS[1], KEYS[2], ARGV[i], ARGV[i + 1])
end
return values
"""
)

_EVENTS: Final = "events"
_PAYLOADS: Final = "payloads"
_IDS: Final = "ids"


def table_key(name: str, key: str) -> str:
    """The common start of every Redis key of ``key`` in table ``name``."""
    return f"table:{_escape(name)}:{_escape(key)}"


def window_key(name: str, key: str, start_ms: int) -> str:
    """The value of ``key`` in the window of table ``name`` that starts at ``start_ms``."""
    return f"{table_key(name, key)}:{start_ms}"


def window_ids_key(name: str, key: str, start_ms: int) -> str:
    """The ids of the events applied to that window."""
    return f"{window_key(name, key, start_ms)}:{_IDS}"


def events_key(name: str, key: str) -> str:
    """A sliding table's events of ``key``: event id -> event time."""
    return f"{table_key(name, key)}:{_EVENTS}"


def payloads_key(name: str, key: str) -> str:
    """A sliding table's payloads of ``key``: event id -> amount or member."""
    return f"{table_key(name, key)}:{_PAYLOADS}"


class RedisWindowStore:
    """The ``WindowStore`` on Redis. ``key_prefix`` lets tests share one database without meeting."""

    def __init__(self, client: Redis, *, key_prefix: str = "") -> None:
        self._client = client
        self._prefix = key_prefix
        # register_script only hashes the scripts; Redis loads each on first use.
        self._add_to_windows = client.register_script(_ADD_TO_WINDOWS)
        self._read_windows = client.register_script(_READ_WINDOWS)
        self._add_event = client.register_script(_ADD_EVENT)
        self._read_events = client.register_script(_READ_EVENTS)

    async def add(self, table: TableSpec, change: Change) -> Added:
        try:
            if table.layout is Layout.WINDOWS:
                reply = await self._add_to_windows(*self._windows_call(table, change))
            else:
                reply = await self._add_event(*self._event_call(table, change))
        except (RedisError, OSError) as error:
            raise _unavailable("an add", error) from None
        counted, value = reply
        return Added(counted=bool(counted), value=int(value))

    async def read(self, table: TableSpec, key: str, windows: Sequence[Span]) -> list[int]:
        if not windows:
            return []
        try:
            if table.layout is Layout.WINDOWS:
                keys = [self._prefix + window_key(table.name, key, span.start_ms) for span in windows]
                values = await self._read_windows(keys=keys, args=[table.kind.value])
            else:
                bounds = [bound for span in windows for bound in _event_bounds(span)]
                values = await self._read_events(
                    keys=self._event_keys(table.name, key), args=[table.kind.value, *bounds]
                )
        except (RedisError, OSError) as error:
            raise _unavailable("a read", error) from None
        return [int(value) for value in values]

    async def cells(self, table: TableSpec, *, now_ms: int) -> dict[str, list[Cell]]:
        try:
            names = await self._keys_of(table)
            if table.layout is Layout.WINDOWS:
                found = await self._window_cells(table, names)
            else:
                found = await self._event_cells(table, names)
        except (RedisError, OSError) as error:
            raise _unavailable("a snapshot", error) from None
        live = {
            key: sorted((cell for cell in cells if cell.start_ms + table.lifetime_ms > now_ms), key=_start)
            for key, cells in found.items()
        }
        return {key: cells for key, cells in live.items() if cells}

    async def clear(self, table: TableSpec) -> None:
        try:
            names = await self._keys_of(table)
            for first in range(0, len(names), 500):
                await self._client.unlink(*(self._prefix + name for name in names[first : first + 500]))
        except (RedisError, OSError) as error:
            raise _unavailable("a clear", error) from None

    def _windows_call(self, table: TableSpec, change: Change) -> tuple[list[str], list[str | int]]:
        keys: list[str] = []
        ttls: list[str | int] = []
        for span in change.windows:
            keys += [
                self._prefix + window_key(table.name, change.key, span.start_ms),
                self._prefix + window_ids_key(table.name, change.key, span.start_ms),
            ]
            ttls.append(span.start_ms + table.lifetime_ms - change.now_ms)
        if change.read is not None:
            keys.append(self._prefix + window_key(table.name, change.key, change.read.start_ms))
        reads = "1" if change.read is not None else "0"
        return keys, [table.kind.value, change.event_id, str(change.payload), reads, *ttls]

    def _event_call(self, table: TableSpec, change: Change) -> tuple[list[str], list[str | int]]:
        # An event at t has expired once t + lifetime <= now: forget every event at or before this.
        forget_up_to = change.now_ms - table.lifetime_ms
        read = _event_bounds(change.read) if change.read is not None else ("", "")
        args: list[str | int] = [
            table.kind.value,
            change.event_id,
            str(change.payload),
            change.at_ms,
            "1" if change.windows else "0",
            forget_up_to,
            table.lifetime_ms,
            change.now_ms,
            *read,
        ]
        return self._event_keys(table.name, change.key), args

    def _event_keys(self, name: str, key: str) -> list[str]:
        return [self._prefix + events_key(name, key), self._prefix + payloads_key(name, key)]

    async def _keys_of(self, table: TableSpec) -> list[str]:
        """Every key of ``table``, without the prefix."""
        start = self._prefix + f"table:{_escape(table.name)}:"
        pattern = _glob_escape(start) + "*"
        names = [_text(name) async for name in self._client.scan_iter(match=pattern, count=1000)]
        return [name.removeprefix(self._prefix) for name in names]

    async def _window_cells(self, table: TableSpec, names: list[str]) -> dict[str, list[Cell]]:
        places = [place for place in map(_window_place, names) if place is not None]
        async with self._client.pipeline(transaction=False) as pipe:
            for key, start in places:
                name = self._prefix + window_key(table.name, key, start)
                if table.kind is Kind.DISTINCT:
                    pipe.scard(name)
                else:
                    pipe.get(name)
            values = await pipe.execute()
        found: dict[str, list[Cell]] = {}
        for (key, start), value in zip(places, values, strict=True):
            if value is not None:
                found.setdefault(key, []).append(Cell(start, int(value)))
        return found

    async def _event_cells(self, table: TableSpec, names: list[str]) -> dict[str, list[Cell]]:
        keys = [_unescape(name.split(":")[2]) for name in names if name.endswith(":" + _EVENTS)]
        async with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                events, payloads = self._event_keys(table.name, key)
                pipe.zrange(events, 0, -1, withscores=True)
                pipe.hgetall(payloads)
            replies = await pipe.execute()
        found: dict[str, list[Cell]] = {}
        for index, key in enumerate(keys):
            events, payloads = replies[2 * index], replies[2 * index + 1]
            by_id = {_text(event_id): _text(payload) for event_id, payload in payloads.items()}
            found[key] = [
                Cell(int(at_ms), _payload_of(table.kind, by_id.get(_text(event_id), "1")))
                for event_id, at_ms in events
            ]
        return found


def _event_bounds(span: Span) -> tuple[str, str]:
    """A window's event times as inclusive sorted-set score bounds."""
    return str(span.start_ms), str(span.end_ms - 1)


def _window_place(name: str) -> tuple[str, int] | None:
    """(key, window start) of a window's value key; None for an ids key or another table's layout."""
    parts = name.split(":")
    if len(parts) != 4 or not parts[3].lstrip("-").isdigit():
        return None
    return _unescape(parts[2]), int(parts[3])


def _payload_of(kind: Kind, stored: str) -> int | str:
    return stored if kind is Kind.DISTINCT else int(stored)


def _start(cell: Cell) -> int:
    return cell.start_ms


def _escape(part: str) -> str:
    # Leaves letters, digits and _.-~ alone; ':' '{' '}' '*' '?' '[' and '%' itself become %XX.
    return quote(part, safe="")


def _unescape(part: str) -> str:
    return unquote(part)


def _glob_escape(text: str) -> str:
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _unavailable(operation: str, error: Exception) -> DependencyUnavailable:
    # The type only: redis-py's message can name the host.
    return DependencyUnavailable(f"Redis did not answer {operation} of a table: {type(error).__name__}")
