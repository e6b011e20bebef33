"""What one child of this command needs: its thread caps (caps.py), the per-child need as
a run learns it (estimate.py), the plan cache across runs (cache.py), and a plan from one
measured child (plan.py)."""
