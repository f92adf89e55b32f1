"""The API's routes, one module per resource; each parses, calls one service function and shapes the answer."""
