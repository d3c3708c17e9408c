"""MercadoLibre adapter: rotating OAuth, items with variations, orders, pointer notifications."""

from syncd.channels.mercadolibre.adapter import MercadoLibreChannel, create_channel

__all__ = ["MercadoLibreChannel", "create_channel"]
