"""syncd: one live, honest truth of a multichannel seller's stock, orders and prices."""

__version__ = "0.1.0"
