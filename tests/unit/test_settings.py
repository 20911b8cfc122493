from __future__ import annotations

import subprocess
import sys

import pytest

from payments.pipeline.settings import (
    SECRET_VARIABLES,
    VARIABLES,
    AppEnv,
    Settings,
    SettingsError,
    load_settings,
)

A_SECRET = "s3cr3t-value-that-must-never-be-printed-000000"


def test_the_defaults_run_the_local_stack_in_development():
    settings = load_settings({})

    assert settings.app.env is AppEnv.DEVELOPMENT
    assert settings.web.port == 8080
    assert settings.cashfree.api_version == "2025-01-01"
    assert settings.rabbitmq.retry_delay_scale == 1.0


def test_variables_land_in_their_sections():
    settings = load_settings(
        {"PORT": "9000", "RABBITMQ_PREFETCH": "4", "RETRY_DELAY_SCALE": "0.001", "LOG_LEVEL": "DEBUG"}
    )

    assert settings.web.port == 9000
    assert settings.rabbitmq.prefetch == 4
    assert settings.rabbitmq.retry_delay_scale == 0.001
    assert settings.app.log_level == "DEBUG"


def test_a_secret_can_come_from_a_file(tmp_path):
    secret_file = tmp_path / "jwt"
    secret_file.write_text(A_SECRET + "\n")

    settings = load_settings({"JWT_SECRET_FILE": str(secret_file)})

    assert settings.security.jwt_secret.get_secret_value() == A_SECRET


def test_a_secret_given_twice_is_refused():
    with pytest.raises(SettingsError, match="either JWT_SECRET or JWT_SECRET_FILE"):
        load_settings({"JWT_SECRET": A_SECRET, "JWT_SECRET_FILE": "/dev/null"})


def test_an_unreadable_secret_file_names_the_variable(tmp_path):
    with pytest.raises(SettingsError, match="JWT_SECRET_FILE: cannot read"):
        load_settings({"JWT_SECRET_FILE": str(tmp_path / "missing")})


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"APP_ENV": "staging"}, "APP_ENV"),
        ({"JWT_SECRET": "short-" + "x"}, "JWT_SECRET"),
        ({"ALERTMANAGER_TOKEN": "too-short-to-guess-hard"}, "ALERTMANAGER_TOKEN"),
        ({"PAYMENT_ENCRYPTION_KEY": "bm90IDMyIGJ5dGVz"}, "PAYMENT_ENCRYPTION_KEY"),
        ({"PAYMENT_ENCRYPTION_KEY": "%%%not-base64%%%"}, "PAYMENT_ENCRYPTION_KEY"),
        ({"CASHFREE_API_VERSION": "latest"}, "CASHFREE_API_VERSION"),
        ({"RETRY_DELAY_SCALE": "0"}, "RETRY_DELAY_SCALE"),
    ],
)
def test_an_invalid_value_is_refused_naming_its_variable(environ, variable):
    with pytest.raises(SettingsError, match=rf"\b{variable}: "):
        load_settings(environ)


def test_an_invalid_secret_is_never_echoed():
    with pytest.raises(SettingsError) as raised:
        load_settings({"JWT_SECRET": "tooshort-secret"})

    assert "tooshort-secret" not in str(raised.value)


def test_secrets_do_not_show_in_repr():
    settings = load_settings({"JWT_SECRET": A_SECRET})

    assert A_SECRET not in repr(settings)
    assert A_SECRET not in str(settings.model_dump())


def test_production_refuses_the_development_values_even_when_given_explicitly():
    development = Settings()
    environ = {
        "APP_ENV": "production",
        "CASHFREE_SECRET_KEY": A_SECRET,
        "JWT_SECRET": development.security.jwt_secret.get_secret_value(),
        "PAYMENT_ENCRYPTION_KEY": development.security.payment_encryption_key.get_secret_value(),
    }

    with pytest.raises(
        SettingsError, match="development value in production: JWT_SECRET, PAYMENT_ENC"
    ) as refused:
        load_settings(environ)

    assert development.security.jwt_secret.get_secret_value() not in str(refused.value)


def test_production_refuses_to_start_on_development_secrets():
    with pytest.raises(SettingsError, match="required in production: CASHFREE_SECRET_KEY, JWT_SECRET"):
        load_settings({"APP_ENV": "production"})


def test_every_secret_variable_is_a_known_variable():
    assert set(SECRET_VARIABLES) <= set(VARIABLES)


def test_the_command_line_exits_non_zero_naming_the_variable_and_hiding_the_secret():
    environ = {"PATH": "/usr/bin:/bin", "JWT_SECRET": "short-but-secret-jwt", "PORT": "not-a-port"}

    result = subprocess.run(
        [sys.executable, "-m", "payments", "migrate"], env=environ, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2
    assert "PORT" in result.stderr
    assert "JWT_SECRET" in result.stderr
    assert "short-but-secret-jwt" not in result.stderr + result.stdout
