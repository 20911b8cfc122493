"""The PostgreSQL bridge: pool, SQL migrations, inbox, outbox, audit log and the unit of work.

Every statement is a named module-level constant; nothing here opens a connection at import time.
"""

from __future__ import annotations
