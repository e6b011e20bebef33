"""Starting commands the way a Python parent does: the command and the condition under test,
the invocation-method catalogue, the launching parent (`python -m harness.launch.parent`),
and the launch group, which is the one way to run launches: it starts them under one
budget, supervises them and builds their outcomes.
"""
