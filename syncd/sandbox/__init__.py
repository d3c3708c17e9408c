"""Faithful simulators of Amazon SP-API, MercadoLibre and a 3PL, plus a traffic generator."""
