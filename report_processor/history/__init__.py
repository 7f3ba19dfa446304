"""Memory across runs (issue 12): per-test history in the results bucket, the diff with the
previous run, flakiness across runs, an expiring quarantine and the notification decision.

Pure core: no AWS SDK anywhere in this package except `s3.py`, the shell that implements
`storage.HistoryStore` with boto3. Design and rules: docs/history.md.
"""

from __future__ import annotations
