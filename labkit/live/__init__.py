"""The live system on the wall clock: the simulated Responses API server (WebSocket mode and HTTP/SSE), the clients,
the rollout runner, and measure/validate.

May import the model, the wire, the closed form (``labkit.sim.analytic``) and the analysis; never SimPy or plotly.
"""
