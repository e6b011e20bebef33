"""The `harness` command: one parser, bad input as one line and exit 2 before anything
starts, interrupts as 128+signal; `harness doctor`, `launch`, `probe`, `methods` and
`phase2 ...`. Every error of the harness's error family is mapped to an exit code here and
nowhere else.
"""
