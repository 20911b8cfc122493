"""Cashfree's error answers: ``{"message", "code", "type"}`` with the status of FACTS §8."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class ErrorType(StrEnum):
    INVALID_REQUEST = "invalid_request_error"  #: 400, 404 and 409
    AUTHENTICATION = "authentication_error"  #: 401
    IDEMPOTENCY = "idempotency_error"  #: 422 (SPEC; SKILLS' 400 variant is not simulated)
    RATE_LIMIT = "rate_limit_error"  #: 429
    API = "api_error"  #: 5xx


class SandboxError(Exception):
    """An error answer; the PG middleware renders it with the usual headers."""

    def __init__(self, status: int, code: str, message: str, error_type: ErrorType) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.error_type = error_type

    def body(self) -> dict[str, str]:
        return {"message": self.message, "code": self.code, "type": self.error_type.value}


def invalid(code: str, message: str) -> SandboxError:
    """400 ``invalid_request_error``: a field is missing or wrong, or the state forbids the call."""
    return SandboxError(400, code, message, ErrorType.INVALID_REQUEST)


def missing(field: str) -> SandboxError:
    """400 ``<field>_missing``, Cashfree's code for an absent required field."""
    return invalid(f"{field}_missing", f"{field} is missing in the request")


def bad_value(field: str, rule: str) -> SandboxError:
    """400 ``<field>_invalid``, Cashfree's code for a present but unacceptable field."""
    return invalid(f"{field}_invalid", f"{field} is invalid: {rule}")


def not_found(code: str, message: str) -> SandboxError:
    return SandboxError(404, code, message, ErrorType.INVALID_REQUEST)


def already_exists(code: str, message: str) -> SandboxError:
    return SandboxError(409, code, message, ErrorType.INVALID_REQUEST)


def authentication_failed() -> SandboxError:
    return SandboxError(401, "request_failed", "authentication Failed", ErrorType.AUTHENTICATION)


def idempotency_mismatch() -> SandboxError:
    message = "the idempotency key was used before with a different request"
    return SandboxError(422, "request_invalid", message, ErrorType.IDEMPOTENCY)


def rate_limited(kind: str) -> SandboxError:
    subject = "IP" if kind == "ip" else "app id"
    message = f"Too many requests from {subject}. Check headers"
    return SandboxError(429, "request_failed", message, ErrorType.RATE_LIMIT)


#: The code a simulated server-side failure carries (FACTS §8).
_SERVER_CODES: Final = {502: "bank_processing_failure"}


def server_error(status: int) -> SandboxError:
    """A 5xx ``api_error`` (502 is the partner-bank failure)."""
    code = _SERVER_CODES.get(status, "internal_error")
    return SandboxError(status, code, "internal Server Error (simulated by the sandbox)", ErrorType.API)


def bad_url() -> SandboxError:
    """No PG route has this method and path (Cashfree answers 400 ``request_failed``)."""
    return invalid("request_failed", "bad URL, please check API documentation")
