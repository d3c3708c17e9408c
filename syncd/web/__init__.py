"""The public (webhooks only) and admin (loopback: board, status, API, metrics) aiohttp apps."""
