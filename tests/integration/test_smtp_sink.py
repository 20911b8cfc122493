"""``SmtpSink`` itself: starting and stopping in the test's loop, its files, and its own guards."""

from __future__ import annotations

import asyncio

import pytest
from aiosmtplib import SMTP, SMTPRecipientsRefused

from payments.bridges.smtp.sink import SmtpSink


async def send_raw(sink: SmtpSink, message: bytes, *, recipients=("ops@commdesk.example",)) -> str:
    async with SMTP(hostname=sink.host, port=sink.port, local_hostname="t", timeout=5) as client:
        _, reply = await client.sendmail("alerts@commdesk.example", list(recipients), message)
    return reply


async def test_the_sink_takes_a_free_port_and_names_it_in_its_url(tmp_path):
    async with SmtpSink(tmp_path) as first, SmtpSink(tmp_path) as second:
        assert first.port != second.port
        assert first.url == f"smtp://127.0.0.1:{first.port}"


async def test_a_taken_port_is_an_os_error_at_start(tmp_path):
    async with SmtpSink(tmp_path) as running:
        with pytest.raises(OSError, match="address already in use"):
            await SmtpSink(tmp_path, port=running.port).start()


async def test_the_directory_is_created_and_holds_one_file_per_message(tmp_path):
    directory = tmp_path / "var" / "mail"
    async with SmtpSink(directory) as sink:
        for n in range(3):
            await send_raw(sink, f"Subject: n{n}\r\n\r\nbody {n}\r\n".encode())

    files = sorted(directory.iterdir())
    assert [path.name for path in files] == sorted(f"{mail.queue_id}.eml" for mail in sink.received)
    assert [mail.queue_id.rsplit("-", 1)[1] for mail in sink.received] == ["1", "2", "3"]
    for n, mail in enumerate(sink.received):
        assert mail.path is not None
        assert mail.path.read_bytes().endswith(f"Subject: n{n}\r\n\r\nbody {n}\r\n".encode())


async def test_a_sink_without_a_directory_keeps_messages_in_memory_only(tmp_path):
    async with SmtpSink() as sink:
        reply = await send_raw(sink, b"Subject: only here\r\n\r\nhello\r\n")

    [mail] = sink.received
    assert mail.path is None
    assert reply == f"OK queued as {mail.queue_id}"
    assert mail.message["Subject"] == "only here"
    assert list(tmp_path.iterdir()) == []


async def test_a_dot_at_the_start_of_a_line_arrives_as_sent(tmp_path):
    async with SmtpSink(tmp_path) as sink:
        await send_raw(sink, b"Subject: dots\r\n\r\n.leading dot\r\n..two\r\n")

    assert sink.received[0].raw.endswith(b"\r\n.leading dot\r\n..two\r\n")


async def test_waiting_returns_as_soon_as_enough_messages_arrived(tmp_path):
    async with SmtpSink(tmp_path) as sink:
        waiting = asyncio.create_task(sink.wait_for_messages(2))
        await send_raw(sink, b"Subject: one\r\n\r\n1\r\n")
        assert not waiting.done()
        await send_raw(sink, b"Subject: two\r\n\r\n2\r\n")

        messages = await asyncio.wait_for(waiting, timeout=5)

    assert [message["Subject"] for message in messages] == ["one", "two"]


async def test_stopping_hangs_up_on_a_client_that_is_still_connected(tmp_path):
    sink = SmtpSink(tmp_path)
    await sink.start()
    reader, writer = await asyncio.open_connection(sink.host, sink.port)
    assert (await reader.readline()).startswith(b"220 ")

    await sink.stop()

    assert await asyncio.wait_for(reader.read(), timeout=5) == b""
    writer.close()
    await writer.wait_closed()


async def test_a_refusal_refuses_a_message_whole_whatever_its_recipients(tmp_path):
    three = ("a@one.example", "b@two.example", "c@three.example")
    async with SmtpSink(tmp_path) as sink:
        sink.refuse_next(1, 550)
        with pytest.raises(SMTPRecipientsRefused) as raised:
            await send_raw(sink, b"Subject: refused\r\n\r\nx\r\n", recipients=three)
        await send_raw(sink, b"Subject: accepted\r\n\r\ny\r\n", recipients=three)

    assert [refusal.code for refusal in raised.value.recipients] == [550, 550, 550]
    assert sink.refused == 1
    assert [(mail.message["Subject"], mail.rcpt_tos) for mail in sink.received] == [("accepted", three)]


@pytest.mark.parametrize("code", [250, 354, 399, 600])
def test_a_refusal_must_be_a_4xx_or_5xx_reply(code):
    with pytest.raises(ValueError, match="4xx or 5xx"):
        SmtpSink().refuse_next(1, code)


def test_implicit_tls_needs_a_certificate():
    with pytest.raises(ValueError, match="tls_context"):
        SmtpSink(implicit_tls=True)
