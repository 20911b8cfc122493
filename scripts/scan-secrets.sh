#!/usr/bin/env bash
# detect-secrets over every tracked file (every file, outside git): anything that looks like a secret
# and is not in the audited baseline (.secrets.baseline: every entry a test value or a documented
# placeholder, marked is_secret: false) fails the check. Entries are matched by file, type and the
# secret's hash, not by line, so moving code does not churn the baseline. After adding a deliberate
# test value: .venv/bin/detect-secrets scan --baseline .secrets.baseline, then audit the new entries
# (.venv/bin/detect-secrets audit .secrets.baseline).
set -euo pipefail
cd "$(dirname "$0")/.."

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  files() { git ls-files -z; }
else
  files() { find . -type f -not -path './.venv/*' -not -path './.git/*' -not -path './var/*' -not -name '*.pyc' -printf '%P\0'; }
fi

# The baseline itself is made of hashes of what it lists: not a file to scan.
files | grep -zv '^\.secrets\.baseline$' | xargs -0 .venv/bin/detect-secrets scan | .venv/bin/python -c '
import json, sys

def found(document):
    return {(path, entry["type"], entry["hashed_secret"]): entry["line_number"]
            for path, entries in document["results"].items() for entry in entries}

scanned = found(json.load(sys.stdin))
with open(".secrets.baseline") as baseline:
    known = found(json.load(baseline))
new = sorted((path, line, kind) for (path, kind, _), line in scanned.items() if (path, kind, _) not in known)
for path, line, kind in new:
    print(f"scan-secrets: {path}:{line}: {kind} is not in the audited baseline", file=sys.stderr)
sys.exit(1 if new else 0)
'
