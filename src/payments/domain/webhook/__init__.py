"""Inbound gateway webhooks, in our terms: what a notification says, whichever gateway sent it."""

from __future__ import annotations
