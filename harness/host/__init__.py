"""What the machine allows a launch: pids cgroups (v1, and v2 with delegation), rlimits and
the trampoline that applies them before exec (`python -m harness.host.limits`), the live
task headroom up the cgroup tree, the death signal, process trees, and GPUs through NVML.
Stdlib and psutil only: launching parents and the trampoline import it before anything
heavy. Imports nothing of the harness above it.
"""
