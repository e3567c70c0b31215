"""Experiments that run the simulated server and a client together: measure, validate, fit recovery."""
