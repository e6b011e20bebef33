"""What people see of a run: progress and the summary in the terminal (progress.py) and
OUT/report.html (html.py)."""
