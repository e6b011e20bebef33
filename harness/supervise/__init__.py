"""Watching launches while they run: one single-threaded loop (supervisor.py) over every
launch of a group samples each process tree (watch.py) into samples.jsonl, tells progress
from stalls and timeouts, diagnoses a stall (pipes, stacks), sees GPU work, kills whole
trees, and hands what it saw (observation.py) to the verdict. Where a launch keeps its
files is files.py. It knows nothing of verdicts or of how a launch was started.
"""
