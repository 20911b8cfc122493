"""Invoices: one per successful payment, numbered without gaps per year, kept as a PDF."""
