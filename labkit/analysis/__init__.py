"""Analysis: metrics derived from the spans table, and research tables by topic (the headline, the crossover, the
critical path, failures, the fleet, calibration families).

May import the model and the simulators; never sockets or plotly.
"""
