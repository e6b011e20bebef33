"""What a launch gets when nobody says otherwise, in a module that imports nothing: the
CLI builds its parser (and refuses bad flags) from these before the launch machinery,
psutil or TensorFlow is loaded."""

from __future__ import annotations

DEFAULT_TIMEOUT_S = 900.0
DEFAULT_STALL_TIMEOUT_S = 60.0
PARENT_TF_STATES = ("none", "imported", "initialized")
