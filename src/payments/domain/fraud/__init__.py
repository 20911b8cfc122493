"""Fraud screening: rules over windowed tables score each payment (allow, review, block)."""
