"""Running the grid's tasks to their final attempts: tasks and attempts (task.py), the one
loop (loop.py), the retry rules (retry.py), admission (admission.py), and the decision
log (decisions.py)."""
