"""Benchmarks (not tests): ratios measured in one run, printed as one line each and saved
as JSON under reports/bench/. Run with `nox -s bench` or `python -m bench [NAME...]`."""
