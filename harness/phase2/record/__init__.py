"""What a run keeps: one row per finished evaluation (row.py) in the ledger (ledger.py),
the running summary (summary.py), and results.json written at a bounded rate
(snapshots.py)."""
