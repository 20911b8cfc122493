"""``GET /api/v1/admin/alerts/stream``: the backlog, then live alerts, as Server-Sent Events."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from tests.unit.web_admin_alerts._alerts import STREAM, AlertsWorld, EventReader, alert
from tests.waiting import eventually


async def open_stream(client: TestClient[Any, Any], world: AlertsWorld, **headers: str) -> EventReader:
    response = await client.get(STREAM, headers={**world.headers(), **headers})
    assert response.status == 200
    return EventReader(response)


async def test_the_stream_is_an_uncached_unbuffered_event_stream(client, world):
    stream = await open_stream(client, world)

    headers = stream.response.headers
    assert headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Accel-Buffering"] == "no"
    await stream.opened()


async def test_the_backlog_comes_oldest_first_then_live_alerts_as_they_are_published(client, world):
    first, second, live = alert("method:upi"), alert("method:card", minutes=1), alert("ip:1", minutes=2)
    await world.stored(first, second)
    stream = await open_stream(client, world)

    assert await stream.alert() == (first.alert_id, {**first.message(), "sequence": 1})
    assert await stream.alert() == (second.alert_id, {**second.message(), "sequence": 2})
    world.feed.publish(live.message())
    assert await stream.alert() == (live.alert_id, live.message())


async def test_each_event_is_an_alert_event_named_by_the_alert_id(client, world):
    one = alert("method:upi", title="Failure rate 30% on UPI")
    await world.stored(one)
    stream = await open_stream(client, world)
    await stream.opened()

    frame = await stream.frame()

    assert frame is not None
    assert frame.lines[:2] == [f"id: {one.alert_id}", "event: alert"]
    assert len(frame.fields("data")) == 1


async def test_the_backlog_holds_only_the_newest_alerts(client, world):
    alerts = [alert(f"method:m{n}", minutes=n) for n in range(5)]
    await world.stored(*alerts)
    stream = await open_stream(client, world)

    received = [(await stream.alert())[0] for _ in range(3)]

    assert received == [one.alert_id for one in alerts[2:]]


async def test_a_client_that_names_its_last_event_gets_only_the_alerts_after_it(client, world):
    first, second, third = alert("a"), alert("b", minutes=1), alert("c", minutes=2)
    await world.stored(first, second, third)
    stream = await open_stream(client, world, **{"Last-Event-ID": first.alert_id})

    assert (await stream.alert())[0] == second.alert_id
    assert (await stream.alert())[0] == third.alert_id
    live = alert("d", minutes=3)
    world.feed.publish(live.message())
    assert (await stream.alert())[0] == live.alert_id


async def test_a_client_that_saw_the_newest_alert_gets_only_live_ones(client, world):
    first, second = alert("a"), alert("b", minutes=1)
    await world.stored(first, second)
    stream = await open_stream(client, world, **{"Last-Event-ID": second.alert_id})
    await stream.opened()

    live = alert("c", minutes=2)
    world.feed.publish(live.message())

    assert (await stream.alert())[0] == live.alert_id


async def test_an_unknown_last_event_id_gets_the_whole_backlog(client, world):
    first, second = alert("a"), alert("b", minutes=1)
    await world.stored(first, second)
    stream = await open_stream(client, world, **{"Last-Event-ID": "alr_not_in_the_backlog"})

    assert (await stream.alert())[0] == first.alert_id
    assert (await stream.alert())[0] == second.alert_id


async def test_an_alert_of_the_backlog_that_also_arrives_live_is_sent_once(client, world):
    stored, live = alert("a"), alert("b", minutes=1)
    await world.stored(stored)
    stream = await open_stream(client, world)
    assert (await stream.alert())[0] == stored.alert_id

    world.feed.publish(stored.message())
    world.feed.publish(live.message())

    assert (await stream.alert())[0] == live.alert_id


async def test_a_live_message_without_a_usable_alert_id_is_skipped(client, world):
    stream = await open_stream(client, world)
    await stream.opened()
    live = alert("a")

    world.feed.publish({"title": "no id"})
    world.feed.publish({**alert("b").message(), "alertId": "alr_bad\nevent: injected"})
    world.feed.publish(live.message())

    assert (await stream.alert())[0] == live.alert_id


async def test_a_quiet_stream_sends_heartbeat_comments(aiohttp_client):
    world = AlertsWorld(heartbeat_seconds=0.05)
    client = await aiohttp_client(world.app())
    stream = await open_stream(client, world)
    await stream.opened()

    frame = await stream.frame()

    assert frame is not None
    assert frame.is_comment
    assert frame.lines == [": heartbeat"]


async def test_open_streams_end_when_the_server_shuts_down_and_it_stops_promptly(client, world):
    stream = await open_stream(client, world)
    await stream.opened()
    assert world.feed.subscribers == 1

    # The heartbeat is a minute away: only the shutdown hook can end the stream this soon.
    await asyncio.wait_for(client.server.close(), timeout=5)

    assert await stream.ended()
    assert world.feed.subscribers == 0


async def test_the_stream_ends_when_the_feed_closes(client, world):
    stream = await open_stream(client, world)
    await stream.opened()

    world.feed.close()

    assert await stream.ended()


async def test_a_client_that_goes_away_is_unsubscribed(aiohttp_client):
    # The handler learns the client left when a write fails: a quick heartbeat makes that soon.
    world = AlertsWorld(heartbeat_seconds=0.05)
    client = await aiohttp_client(world.app())
    stream = await open_stream(client, world)
    await stream.opened()
    assert world.feed.subscribers == 1

    stream.response.close()

    await eventually(lambda: world.feed.subscribers == 0, what="the stream to unsubscribe")


async def test_a_stream_stays_out_of_the_request_latency_histogram(client, world):
    stream = await open_stream(client, world)
    await stream.opened()
    world.feed.close()
    assert await stream.ended()
    await client.get("/api/v1/admin/alerts", headers=world.headers())

    text = await (await client.get("/metrics")).text()

    assert 'route="/api/v1/admin/alerts",status="200"' in text  # the list is timed ...
    assert 'route="/api/v1/admin/alerts/stream"' not in text  # ... a session's length is not a latency
