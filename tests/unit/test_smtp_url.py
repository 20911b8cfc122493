"""``SMTP_URL`` parsing (``bridges/smtp/url.py``): no network."""

from __future__ import annotations

import pytest

from payments.bridges.smtp.url import InvalidSmtpUrl, SmtpUrl


def test_the_default_url_is_the_local_sink_in_the_clear_unless_it_offers_starttls():
    url = SmtpUrl.parse("smtp://127.0.0.1:8025")

    assert url == SmtpUrl(host="127.0.0.1", port=8025)
    assert (url.implicit_tls, url.starttls_required, url.username, url.password) == (False, False, None, None)


@pytest.mark.parametrize(("text", "port"), [("smtp://mail.example", 25), ("smtps://mail.example", 465)])
def test_a_url_without_a_port_takes_its_schemes_own(text, port):
    assert SmtpUrl.parse(text).port == port


def test_smtps_is_implicit_tls():
    url = SmtpUrl.parse("smtps://mail.example:2465/")

    assert (url.implicit_tls, url.starttls_required, url.port) == (True, False, 2465)


def test_starttls_required_and_a_ca_file_are_read_from_the_query():
    url = SmtpUrl.parse("smtp://mail.example:587?starttls=required&ca_file=/etc/ssl/ours.pem")

    assert (url.starttls_required, url.ca_file) == (True, "/etc/ssl/ours.pem")
    assert SmtpUrl.parse("smtp://mail.example?starttls=auto").starttls_required is False


def test_credentials_are_percent_decoded():
    url = SmtpUrl.parse("smtp://mailer%40commdesk.example:p%40ss%3Aw%2Frd@mail.example:587")

    assert (url.username, url.password) == ("mailer@commdesk.example", "p@ss:w/rd")


def test_the_password_shows_in_neither_repr_nor_the_redacted_url():
    url = SmtpUrl.parse("smtp://mailer:hunter2-secret@mail.example:587?starttls=required")

    assert "hunter2-secret" not in repr(url)
    assert url.redacted() == "smtp://mailer:***@mail.example:587?starttls=required"


def test_an_ipv6_host_is_bracketed_in_the_address():
    url = SmtpUrl.parse("smtp://[::1]:8025")

    assert (url.host, url.address) == ("::1", "[::1]:8025")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("http://mail.example", "must start with smtp:// or smtps://"),
        ("mail.example:25", "must start with smtp:// or smtps://"),
        ("smtp://:25", "names no host"),
        ("smtp://mail.example:99999", "valid port"),
        ("smtp://mail.example:twenty-five", "valid port"),
        ("smtp://mail.example/inbox", "no path"),
        ("smtp://mailer@mail.example", "both a user and a password"),
        ("smtp://mail.example?tls=yes", "unknown option 'tls'"),
        ("smtp://mail.example?starttls=sometimes", "auto or required"),
        ("smtp://mail.example?starttls=required&starttls=auto", "starttls twice"),
        ("smtp://mail.example?ca_file=", "ca_file is empty"),
        ("smtps://mail.example?starttls=required", "smtp:// only"),
    ],
)
def test_a_url_that_does_not_parse_says_why(text, problem):
    with pytest.raises(InvalidSmtpUrl, match=problem.replace("?", "\\?")):
        SmtpUrl.parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "smtp://mailer:hunter2-secret@mail.example:99999",
        "smtp://mailer:hunter2-secret@mail.example/path",
        "smtp://mailer:hunter2-secret@mail.example?starttls=maybe",
        "smtx://mailer:hunter2-secret@mail.example",
    ],
)
def test_the_error_never_repeats_the_password(text):
    with pytest.raises(InvalidSmtpUrl) as raised:
        SmtpUrl.parse(text)

    assert "hunter2-secret" not in str(raised.value)
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__ or raised.value.__context__ is None


def test_an_invalid_url_is_a_value_error_for_callers_that_check_configuration():
    assert issubclass(InvalidSmtpUrl, ValueError)
