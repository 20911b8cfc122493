"""One JSON access-log line per request, carrying the request's ids.

aiohttp writes the access log after the middlewares have finished, when the request's trace context
is no longer current, so the ids are read back from the response headers the trace middleware set.
Only the path is logged, never the query string, which may carry personal data.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger


class AccessLogger(AbstractAccessLogger):
    @property
    def enabled(self) -> bool:
        # aiohttp skips ``log`` entirely when this is False: at LOG_LEVEL=WARNING, no per-request work.
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        traceparent = response.headers.get("traceparent", "")
        self.logger.info(
            "%s %s %d",
            request.method,
            request.path,
            response.status,
            extra={
                "requestId": response.headers.get("X-Request-Id"),
                "correlationId": response.headers.get("X-Correlation-Id"),
                "traceId": traceparent.split("-")[1] if traceparent.count("-") == 3 else None,
                "method": request.method,
                "path": request.path,
                "status": response.status,
                "durationSeconds": round(time, 6),
            },
        )
