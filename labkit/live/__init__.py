"""The live system on the wall clock: the simulated Responses API server (WebSocket mode and HTTP/SSE), the clients,
and the rollout runner (measure and validate, which run both sides together, are :mod:`labkit.experiments`).

May import the model, the wire and the closed form (``labkit.sim.analytic``); never SimPy or plotly.
"""
