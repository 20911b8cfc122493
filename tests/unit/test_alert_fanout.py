"""The in-process half of the live alert feed: every subscriber gets every alert; a stuck one is dropped."""

from __future__ import annotations

import asyncio
import logging

import pytest

from payments.bridges.rabbitmq.alert_feed import AlertFanout, parse_alert

READ_SECONDS = 5.0


def message(n: int) -> dict[str, object]:
    return {"alertId": f"alr_{n}", "title": f"alert {n}"}


async def take(alerts, count: int) -> list[str]:
    async with asyncio.timeout(READ_SECONDS):
        return [(await anext(alerts))["alertId"] for _ in range(count)]


async def rest(alerts) -> list[str]:
    async with asyncio.timeout(READ_SECONDS):
        return [item["alertId"] async for item in alerts]


async def test_every_subscriber_gets_every_alert_in_order():
    fanout = AlertFanout()
    async with fanout.subscribe() as first, fanout.subscribe() as second:
        for n in range(3):
            fanout.publish(message(n))

        assert await take(first, 3) == ["alr_0", "alr_1", "alr_2"]
        assert await take(second, 3) == ["alr_0", "alr_1", "alr_2"]


async def test_alerts_published_before_subscribing_are_not_replayed():
    fanout = AlertFanout()
    fanout.publish(message(0))

    async with fanout.subscribe() as alerts:
        fanout.publish(message(1))

        assert await take(alerts, 1) == ["alr_1"]


async def test_leaving_the_block_unsubscribes():
    fanout = AlertFanout()
    async with fanout.subscribe():
        assert fanout.subscribers == 1

    assert fanout.subscribers == 0
    fanout.publish(message(0))  # nobody to give it to, and nothing raised


async def test_a_subscriber_that_falls_behind_is_dropped_and_the_others_keep_up(caplog):
    fanout = AlertFanout(buffer=2)
    caplog.set_level(logging.WARNING, logger="payments.bridges.rabbitmq.alert_feed")
    async with fanout.subscribe() as stuck, fanout.subscribe() as keeping_up:
        for n in range(2):
            fanout.publish(message(n))
        assert await take(keeping_up, 2) == ["alr_0", "alr_1"]

        fanout.publish(message(2))  # stuck already holds two unread

        assert fanout.subscribers == 1
        assert "dropping a live admin-alert subscriber" in caplog.text
        assert await rest(stuck) == ["alr_0", "alr_1"]
        fanout.publish(message(3))
        assert await take(keeping_up, 2) == ["alr_2", "alr_3"]


async def test_closing_ends_every_subscription_after_what_it_holds():
    fanout = AlertFanout()
    async with fanout.subscribe() as alerts:
        fanout.publish(message(0))

        fanout.close()

        assert await rest(alerts) == ["alr_0"]
        assert await rest(alerts) == []
        assert fanout.subscribers == 0


async def test_a_subscription_after_closing_ends_at_once():
    fanout = AlertFanout()
    fanout.close()

    async with fanout.subscribe() as alerts:
        fanout.publish(message(0))

        assert await rest(alerts) == []


def test_a_buffer_must_hold_an_alert():
    with pytest.raises(ValueError, match="at least one"):
        AlertFanout(buffer=0)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"title": "no id"}', b'{"alertId": 7}', b"\xff"],
)
def test_a_body_that_is_not_an_alert_is_refused(body):
    assert parse_alert(body) is None


def test_an_alert_body_is_parsed():
    assert parse_alert(b'{"alertId": "alr_1", "title": "t"}') == {"alertId": "alr_1", "title": "t"}
