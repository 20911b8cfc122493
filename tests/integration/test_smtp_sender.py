"""``SmtpSender`` against a real SMTP server (``SmtpSink``, aiosmtpd) on a free port."""

from __future__ import annotations

import asyncio
import email.policy
import logging
import ssl
from collections.abc import Callable
from email.parser import BytesParser

import pytest

from payments.bridges.smtp.sender import SmtpSender
from payments.bridges.smtp.sink import SmtpSink
from payments.bridges.smtp.url import SmtpUrl
from payments.domain.errors import DependencyUnavailable
from payments.domain.notification.sending import Attachment, EmailMessage, EmailRefused
from tests.integration.smtp_support import Certificate, scripted_smtp_server, self_signed_certificate

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
PASSWORD = "s3cret-hunter2-password"


def an_email(**changes) -> EmailMessage:
    fields = {
        "message_id": "<eml_01HZX3@payments.commdesk.example>",
        "sender": "CommDesk Payments <payments@commdesk.example>",
        "recipients": ("asha.verma@customer.example",),
        "subject": "Payment received: ₹1,499.00",
        "text": "Thank you, Asha. We received ₹1,499.00 for pay_123.",
        "html": "<p>Thank you, Asha. We received <b>₹1,499.00</b> for pay_123.</p>",
        "attachments": (Attachment("INV-2026-000001.pdf", "application/pdf", PDF),),
        "headers": (("X-CommDesk-Email-Kind", "payment.success"),),
    }
    return EmailMessage(**{**fields, **changes})


def sender_for(sink: SmtpSink, *, url: str | None = None, **options) -> SmtpSender:
    options.setdefault("timeout", 5.0)
    return SmtpSender.from_url(url or sink.url, local_hostname="payments.test", **options)


@pytest.fixture
async def sink(tmp_path):
    async with SmtpSink(tmp_path / "mail") as sink:
        yield sink


@pytest.fixture
def certificate(tmp_path) -> Certificate:
    return self_signed_certificate(tmp_path)


async def test_a_message_with_text_html_and_a_pdf_arrives_intact(sink):
    reply = await sender_for(sink).send(an_email())

    [mail] = sink.received
    assert reply == f"OK queued as {mail.queue_id}"
    message = mail.message
    assert message["Subject"] == "Payment received: ₹1,499.00"
    assert message["From"] == "CommDesk Payments <payments@commdesk.example>"
    assert message["To"] == "asha.verma@customer.example"
    assert message["Message-ID"] == "<eml_01HZX3@payments.commdesk.example>"
    assert message["X-CommDesk-Email-Kind"] == "payment.success"
    assert message["Date"].datetime.tzinfo is not None
    assert message.get_content_type() == "multipart/mixed"
    assert message.get_body(("plain",)).get_content().strip() == an_email().text
    assert message.get_body(("html",)).get_content().strip() == an_email().html
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "INV-2026-000001.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == PDF
    assert (mail.mail_from, mail.rcpt_tos) == ("payments@commdesk.example", ("asha.verma@customer.example",))
    assert (mail.encrypted, mail.authenticated) == (False, False)


async def test_the_eml_file_holds_the_envelope_and_the_message_as_received(sink, tmp_path):
    await sender_for(sink).send(an_email(recipients=("a@one.example", "b@two.example")))

    [mail] = sink.received
    assert mail.path is not None
    assert mail.path.parent == tmp_path / "mail"
    assert mail.path.name == f"{mail.queue_id}.eml"
    stored = mail.path.read_bytes()
    assert stored.startswith(
        b"X-Envelope-From: <payments@commdesk.example>\r\nX-Envelope-To: <a@one.example>, <b@two.example>\r\n"
    )
    assert stored.endswith(mail.raw)
    reread = BytesParser(policy=email.policy.default).parsebytes(stored)
    assert reread["To"] == "a@one.example, b@two.example"
    assert next(reread.iter_attachments()).get_content() == PDF


async def test_messages_sent_at_once_each_arrive_in_a_file_of_their_own(sink):
    sender = sender_for(sink)

    replies = await asyncio.gather(*(sender.send(an_email(subject=f"n{n}")) for n in range(5)))

    assert sorted(message["Subject"] for message in await sink.wait_for_messages(5)) == [
        f"n{n}" for n in range(5)
    ]
    assert len({mail.path for mail in sink.received}) == 5
    assert sorted(replies) == sorted(f"OK queued as {mail.queue_id}" for mail in sink.received)


async def test_starttls_is_used_when_the_server_offers_it(tmp_path, certificate):
    async with SmtpSink(tls_context=certificate.server_context()) as sink:
        await sender_for(sink, tls_context=certificate.client_context()).send(an_email())

    [mail] = sink.received
    assert mail.encrypted


async def test_the_ca_file_named_in_the_url_verifies_the_server(certificate):
    async with SmtpSink(tls_context=certificate.server_context()) as sink:
        url = f"{sink.url}?starttls=required&ca_file={certificate.cert_file}"
        await sender_for(sink, url=url).send(an_email())

    assert [mail.encrypted for mail in sink.received] == [True]


async def test_an_untrusted_certificate_is_a_dependency_problem_and_nothing_is_sent(certificate):
    async with SmtpSink(tls_context=certificate.server_context()) as sink:
        with pytest.raises(DependencyUnavailable, match="is unavailable"):
            await sender_for(sink).send(an_email())  # verifies against the system's CAs

    assert sink.received == []


async def test_starttls_required_refuses_a_server_that_does_not_offer_it(sink):
    with pytest.raises(DependencyUnavailable, match="STARTTLS"):
        await sender_for(sink, url=f"{sink.url}?starttls=required").send(an_email())

    assert sink.received == []


async def test_smtps_speaks_tls_from_the_first_byte(certificate):
    async with SmtpSink(tls_context=certificate.server_context(), implicit_tls=True) as sink:
        assert sink.url.startswith("smtps://")
        await sender_for(sink, tls_context=certificate.client_context()).send(an_email())

    assert [mail.encrypted for mail in sink.received] == [True]


async def test_login_with_the_right_password_over_starttls_delivers(certificate):
    sink = SmtpSink(tls_context=certificate.server_context(), credentials=("mailer", PASSWORD))
    async with sink:
        url = sink.url.replace("smtp://", f"smtp://mailer:{PASSWORD}@")
        await sender_for(sink, url=url, tls_context=certificate.client_context()).send(an_email())

    assert [(mail.encrypted, mail.authenticated) for mail in sink.received] == [(True, True)]


async def test_login_over_smtps_delivers(certificate):
    sink = SmtpSink(tls_context=certificate.server_context(), implicit_tls=True, credentials=("u", PASSWORD))
    async with sink:
        url = sink.url.replace("smtps://", f"smtps://u:{PASSWORD}@")
        await sender_for(sink, url=url, tls_context=certificate.client_context()).send(an_email())

    assert [mail.authenticated for mail in sink.received] == [True]


async def test_a_wrong_password_is_a_dependency_problem_that_never_names_the_password(certificate, caplog):
    sink = SmtpSink(tls_context=certificate.server_context(), credentials=("mailer", "the-right-one"))
    async with sink:
        url = sink.url.replace("smtp://", f"smtp://mailer:{PASSWORD}@")
        sender = sender_for(sink, url=url, tls_context=certificate.client_context())
        with caplog.at_level(logging.DEBUG), pytest.raises(DependencyUnavailable) as raised:
            await sender.send(an_email())

    assert "refused our credentials (535)" in str(raised.value)
    assert sink.received == []
    told = [str(raised.value), repr(raised.value), repr(raised.value.__cause__), caplog.text]
    assert not [text for text in told if PASSWORD in text]
    assert PASSWORD not in repr(sender.url)


async def test_a_server_requiring_login_refuses_a_sender_without_credentials(certificate):
    sink = SmtpSink(tls_context=certificate.server_context(), credentials=("mailer", PASSWORD))
    async with sink:
        with pytest.raises(DependencyUnavailable, match="refused our sender address \\(530"):
            await sender_for(sink, tls_context=certificate.client_context()).send(an_email())

    assert sink.received == []


@pytest.mark.parametrize(
    ("code", "stage", "error"),
    [
        (451, "RCPT", DependencyUnavailable),
        (421, "DATA", DependencyUnavailable),
        (550, "RCPT", EmailRefused),
        (554, "DATA", EmailRefused),
    ],
)
async def test_a_refusal_is_temporary_for_4xx_and_final_for_5xx(sink, code, stage, error):
    sink.refuse_next(1, code, at=stage)

    with pytest.raises(error, match=f"\\({code} ") as raised:
        await sender_for(sink).send(an_email())

    assert type(raised.value) is error
    assert sink.received == []
    assert sink.refused == 1
    assert "asha.verma" not in str(raised.value)


def refusing(*addresses: str, code: int = 550) -> Callable[[str], str]:
    """RCPT replies refusing ``addresses`` and quoting each back, as many real servers do."""

    def reply(line: str) -> str:
        address = line.split(":", 1)[1].strip().strip("<>")
        if address in addresses:
            return f"{code} 5.1.1 <{address}>: Recipient address rejected: User unknown"
        return "250 OK"

    return reply


async def test_a_refused_message_names_no_address_even_when_the_server_quotes_it():
    async with scripted_smtp_server(rcpt=refusing("a@one.example", "b@two.example")) as port:
        sender = SmtpSender.from_url(f"smtp://127.0.0.1:{port}", timeout=5.0, local_hostname="t")
        with pytest.raises(EmailRefused) as raised:
            await sender.send(an_email(recipients=("a@one.example", "b@two.example")))

    assert raised.value.reason == "email_refused"
    assert "refused every recipient (550 5.1.1 <***@one.example>: Recipient" in str(raised.value)
    assert "a@one.example" not in str(raised.value)
    # Nothing chained: aiosmtplib's own exceptions carry the addresses into any traceback.
    assert (raised.value.__cause__, raised.value.__suppress_context__) == (None, True)


async def test_a_temporary_refusal_of_any_recipient_makes_the_whole_send_temporary():
    def reply(line: str) -> str:
        return "451 4.7.1 Greylisted" if "a@one.example" in line else "550 5.1.1 Unknown user"

    async with scripted_smtp_server(rcpt=reply) as port:
        sender = SmtpSender.from_url(f"smtp://127.0.0.1:{port}", timeout=5.0, local_hostname="t")
        with pytest.raises(DependencyUnavailable, match=r"refused every recipient \(451, 550 "):
            await sender.send(an_email(recipients=("a@one.example", "b@two.example")))


async def test_a_message_taken_for_some_recipients_counts_as_sent_and_the_log_names_no_one(caplog):
    async with scripted_smtp_server(rcpt=refusing("b@two.example")) as port:
        sender = SmtpSender.from_url(f"smtp://127.0.0.1:{port}", timeout=5.0, local_hostname="t")
        with caplog.at_level(logging.WARNING, logger="payments.bridges.smtp.sender"):
            reply = await sender.send(an_email(recipients=("a@one.example", "b@two.example")))

        await sender.close()

    assert reply == "OK queued as scripted-1"
    assert [record.getMessage() for record in caplog.records] == [
        "the mail server refused 1 of 2 recipients (codes [550]); the others got the message"
    ]


async def test_messages_sent_one_after_another_share_one_connection_until_closed():
    connections: list[int] = []
    async with scripted_smtp_server(connections=connections) as port:
        sender = SmtpSender.from_url(f"smtp://127.0.0.1:{port}", timeout=5.0, local_hostname="t")
        replies = [await sender.send(an_email()) for _ in range(3)]
        await sender.close()  # QUIT: the server's conversation ends

    assert replies == ["OK queued as scripted-1"] * 3
    assert connections == [1]


@pytest.mark.parametrize("answer", ["421 4.4.2 Idle too long, closing", ""])
async def test_a_connection_the_server_dropped_while_idle_is_replaced_and_the_message_sent(answer):
    def mail(earlier: int) -> str:
        # The server took one message, then forgot the client: it answers the next MAIL with 421,
        # or the client finds its end closed when it writes.
        return "250 OK" if earlier == 0 else answer

    connections: list[int] = []
    async with scripted_smtp_server(mail=mail, connections=connections) as port:
        sender = SmtpSender.from_url(f"smtp://127.0.0.1:{port}", timeout=5.0, local_hostname="t")
        replies = [await sender.send(an_email()) for _ in range(2)]
        await sender.close()

    assert replies == ["OK queued as scripted-1"] * 2
    assert connections == [1, 2]


async def test_a_connection_idle_for_too_long_is_not_used_again(sink, monkeypatch):
    sender = sender_for(sink)
    await sender.send(an_email())
    monkeypatch.setattr("payments.bridges.smtp.sender.REUSE_WITHIN_SECONDS", 0.0)

    await sender.send(an_email())

    assert len(sink.received) == 2
    assert sender.idle_connections == 1  # the stale one was closed, the fresh one kept


async def test_after_refusing_the_next_two_the_sink_accepts_again(sink):
    sender = sender_for(sink)
    sink.refuse_next(2, 451)

    outcomes = []
    for _ in range(3):
        try:
            outcomes.append(await sender.send(an_email()))
        except DependencyUnavailable:
            outcomes.append("retry")

    assert outcomes[:2] == ["retry", "retry"]
    assert outcomes[2].startswith("OK queued as ")
    assert len(sink.received) == 1


async def test_refuse_all_lasts_until_recover(sink):
    sender = sender_for(sink)
    sink.refuse_all(451, at="DATA")
    for _ in range(3):
        with pytest.raises(DependencyUnavailable):
            await sender.send(an_email())

    sink.recover()
    await sender.send(an_email())

    assert (sink.refused, len(sink.received)) == (3, 1)


async def test_a_server_that_is_down_is_a_dependency_problem(tmp_path):
    sink = SmtpSink()
    async with sink:
        url = sink.url  # a port that was ours a moment ago, and is closed now

    with pytest.raises(DependencyUnavailable, match="is unavailable") as raised:
        await SmtpSender.from_url(url, timeout=5.0, local_hostname="t").send(an_email())

    assert isinstance(raised.value.__cause__, OSError)


async def test_a_server_that_never_greets_times_out_as_a_dependency_problem():
    hung_up = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # says nothing, until the client gives up and hangs up
        writer.close()
        await writer.wait_closed()
        hung_up.set()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        sender = SmtpSender.from_url(f"smtp://127.0.0.1:{port}", timeout=0.2, local_hostname="t")
        with pytest.raises(DependencyUnavailable, match="is unavailable"):
            await sender.send(an_email())
        await asyncio.wait_for(hung_up.wait(), timeout=5)  # the client closed its end
    finally:
        server.close()
        await server.wait_closed()


async def test_a_header_with_a_line_break_is_refused_before_connecting():
    sender = SmtpSender(SmtpUrl(host="127.0.0.1", port=1), timeout=1.0, local_hostname="t")

    with pytest.raises(EmailRefused, match="header"):
        await sender.send(an_email(subject="Receipt\r\nBcc: everyone@example.com"))


async def test_waiting_for_messages_that_never_come_fails_at_the_deadline(sink):
    with pytest.raises(TimeoutError, match="0 of 1 messages arrived"):
        await sink.wait_for_messages(1, within=0.05)


async def test_a_default_verifying_context_is_used_when_none_is_given(certificate):
    """No tls_context and no ca_file: the system's CAs, which do not know our certificate."""
    async with SmtpSink(tls_context=certificate.server_context()) as sink:
        sender = SmtpSender.from_url(sink.url, timeout=5.0, local_hostname="t")
        with pytest.raises(DependencyUnavailable) as raised:
            await sender.send(an_email())

    assert isinstance(raised.value.__cause__, ssl.SSLError)
