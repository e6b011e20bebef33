"""phase2-harness: reproduce, classify and fix TensorFlow training commands that
die or hang when a Python parent launches many of them.

Importing this package must stay cheap and TensorFlow-free: the trampoline
(`python -m harness.host.limits`) and every launching parent import it.
"""

__version__ = "0.1.0"
