"""Behavioural fakes: in-memory implementations of our Protocols with the same rules as the real ones."""

from __future__ import annotations
