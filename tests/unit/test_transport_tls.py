"""TLS is chosen by the URLs (docs/security.md#transport): our clients pass them to the libraries
unchanged, and these are the settings the libraries take from them. No TLS server runs here, so the
tests stop where a connection would begin."""

from __future__ import annotations

import ssl

from aiormq.connection import Connection, TLSTransportFactory
from redis.asyncio.connection import SSLConnection
from yarl import URL

from payments.bridges.redis.client import open_redis
from payments.pipeline.settings import load_settings


async def test_a_rediss_url_makes_every_pooled_connection_tls_with_the_given_ca():
    url = "rediss://:s3cret-pass@cache.internal:6380/0?ssl_cert_reqs=required&ssl_ca_certs=/etc/ssl/ca.pem"

    async with open_redis(url) as client:
        pool = client.connection_pool

        assert pool.connection_class is SSLConnection
        assert pool.connection_kwargs["ssl_cert_reqs"] == "required"
        assert pool.connection_kwargs["ssl_ca_certs"] == "/etc/ssl/ca.pem"


async def test_an_amqps_url_connects_over_tls_verifying_against_the_given_ca():
    # aio-pika hands our RABBITMQ_URL to aiormq's Connection as it is (bridges/rabbitmq/connection.py).
    connection = Connection("amqps://payments:pw@mq.internal/payments?cafile=/etc/ssl/ca.pem")

    assert isinstance(connection._transport_factory, TLSTransportFactory)
    assert connection.url.port == 5671
    assert connection.ssl_certs.cafile == "/etc/ssl/ca.pem"
    assert connection.ssl_certs.verify


def test_tls_urls_of_every_store_are_accepted_as_they_are():
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://payments:pw@db.internal:5432/payments?sslmode=verify-full"
            "&sslrootcert=/etc/ssl/ca.pem",
            "REDIS_URL": "rediss://:pw@cache.internal:6380/0",
            "RABBITMQ_URL": "amqps://payments:pw@mq.internal:5671/payments?cafile=/etc/ssl/ca.pem",
            "SMTP_URL": "smtps://mailer:pw@smtp.internal:465",
        }
    )

    assert URL(settings.postgres.url.get_secret_value()).query["sslmode"] == "verify-full"
    assert URL(settings.redis.url.get_secret_value()).scheme == "rediss"
    assert URL(settings.rabbitmq.url.get_secret_value()).scheme == "amqps"


def test_the_default_tls_context_verifies_certificates_and_host_names():
    # What the libraries build when a URL asks for TLS without naming a CA: the system's store, with
    # verification on (never CERT_NONE unless a URL says so explicitly).
    context = ssl.create_default_context()

    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
