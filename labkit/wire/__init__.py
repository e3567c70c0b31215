"""The wire: the Responses API's events as plain data (build and parse requests, every server event, SSE and
WebSocket framing, errors) and the token estimate shared by the simulator and the clients.

This layer imports the standard library only: never the model, sockets or clocks.
"""
