"""``payments smtp-sink``: the development SMTP sink as a developer runs it beside a worker."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from payments.bridges.smtp.sender import SmtpSender
from payments.domain.notification.sending import EmailMessage


async def start_sink(*arguments: str, env: dict[str, str], cwd) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "payments",
        "smtp-sink",
        *arguments,
        env={**os.environ, "LOG_LEVEL": "WARNING", **env},
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def test_the_sink_command_stores_what_the_worker_would_send_until_ctrl_c(tmp_path, unused_tcp_port):
    env = {"SMTP_URL": f"smtp://mailer:dev-password@127.0.0.1:{unused_tcp_port}"}
    process = await start_sink("--directory", "inbox", env=env, cwd=tmp_path)
    try:
        assert process.stdout is not None
        banner = await asyncio.wait_for(process.stdout.readline(), timeout=60)
        assert banner.decode() == (
            f"SMTP sink on smtp://127.0.0.1:{unused_tcp_port}, "
            "writing each message to inbox/ (Ctrl-C to stop)\n"
        )
        sender = SmtpSender.from_url(env["SMTP_URL"], timeout=10.0, local_hostname="worker.test")
        reply = await sender.send(
            EmailMessage(
                message_id="<eml_cli@payments.commdesk.example>",
                sender="payments@commdesk.example",
                recipients=("ops@commdesk.example",),
                subject="Alert: webhook failures",
                text="3 failures in 5 minutes",
                html="<p>3 failures in 5 minutes</p>",
            )
        )
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=60)

    assert process.returncode == 0, output
    [stored] = list((tmp_path / "inbox").iterdir())
    assert reply == f"OK queued as {stored.stem}"
    assert b"Subject: Alert: webhook failures" in stored.read_bytes()
    assert output.decode().endswith("SMTP sink stopped after 1 messages\n")


async def test_the_sink_command_will_not_stand_in_for_a_server_that_needs_tls(tmp_path):
    process = await start_sink(env={"SMTP_URL": "smtps://127.0.0.1:8465"}, cwd=tmp_path)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)

    assert process.returncode == 2
    assert output.decode() == (
        "payments smtp-sink: SMTP_URL asks for TLS, which the development sink does not offer\n"
    )


async def test_the_sink_command_will_not_listen_for_another_machine_unless_told_where(tmp_path):
    process = await start_sink(env={"SMTP_URL": "smtp://mail.commdesk.example"}, cwd=tmp_path)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)

    assert process.returncode == 2
    assert output.decode() == (
        "payments smtp-sink: SMTP_URL points at another machine (mail.commdesk.example:25)\n"
    )


async def test_the_sink_command_says_when_its_port_is_taken(tmp_path):
    taken = await asyncio.start_server(lambda reader, writer: writer.close(), "127.0.0.1", 0)
    port = taken.sockets[0].getsockname()[1]
    try:
        process = await start_sink("--port", str(port), env={}, cwd=tmp_path)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        taken.close()
        await taken.wait_closed()

    assert process.returncode == 3
    assert output.decode().startswith(f"payments smtp-sink: cannot listen on 127.0.0.1:{port}: ")
