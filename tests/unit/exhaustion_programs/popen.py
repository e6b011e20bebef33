"""Starts more processes than the budget allows, the way a Python pipeline does."""
import subprocess

children = [subprocess.Popen(["sleep", "5"]) for _ in range(20)]
