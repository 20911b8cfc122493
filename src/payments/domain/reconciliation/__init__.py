"""Reconciliation: prove every rupee by comparing what we recorded with what the gateway reports.

Pure code, no I/O. The caller loads both sides for a half-open range ``[start, end)``:

- ``model``: the inputs (``OurRecords``, ``TheirRecords``), a ``Finding`` and its ``MismatchKind``,
  a ``ReconciliationRun`` and a ``StoredItem`` (a finding as kept between runs, open or resolved).
- ``rules.compare``: every rule, one pure function of both sides, the range and the clock; its
  findings are sorted by ``(kind, key)`` and a finding's ``key`` is the same in every run that finds it.
- ``report``: the input digest and the JSON and CSV reports, identical byte for byte for the same
  range, rule version, inputs and findings.
- ``views``: the JSON-friendly views of records that findings, the digest and the reports share.

Bump ``model.RULE_VERSION`` whenever a rule changes what it finds or how it describes it.
"""
