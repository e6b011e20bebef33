"""Searches driving the Phase 2 runner's Pool: each integration turns a search library's
trials into Pool submissions and the Pool's results and live reports back into the
library's words. Each is an optional extra, imported only by its own module (Optuna:
`pip install 'phase2-harness[optuna]'`)."""
