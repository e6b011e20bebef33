"""From what was seen to what happened: the Verdict names (one table of their styles, short
names and colours), classify() over an Observation and the probes (events, output
patterns), thread exhaustion in each runtime's own words, and the Outcome record that is
built once, complete, and written once per launch.
"""
