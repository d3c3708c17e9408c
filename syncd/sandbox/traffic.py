"""The demo's traffic: buyers on both marketplaces, a flash sale, 3PL shipments and a receipt,
a price change, a cancellation, and a MercadoLibre outage a minute in. Seeded, so every run tells
the same story."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal

import structlog

from syncd.sandbox.amazon import AmazonSimulator
from syncd.sandbox.catalog import DemoCatalog
from syncd.sandbox.common import OutageMode
from syncd.sandbox.mercadolibre import MercadoLibreSim
from syncd.sandbox.threepl_state import ThreePLState

log = structlog.get_logger("syncd.demo")

PriceSetter = Callable[[str, Decimal], Awaitable[object]]


@dataclass
class Schedule:
    """When the story's moments happen, in seconds from the start (scaled for short runs)."""

    buyers_from: float = 5.0  # let the first sync land before anyone buys
    flash_sale: float = 25.0
    price_change: float = 35.0
    receipt: float = 45.0
    cancellation: float = 52.0
    outage: float = 60.0
    outage_length: float = 45.0
    sale_interval: tuple[float, float] = (1.5, 4.0)

    def scaled(self, factor: float) -> Schedule:
        """Every moment multiplied by `factor` (a 30 s test run sees the whole story)."""
        lo, hi = self.sale_interval
        return Schedule(self.buyers_from * factor, self.flash_sale * factor, self.price_change * factor,
                        self.receipt * factor,
                        self.cancellation * factor, self.outage * factor, self.outage_length * factor,
                        (lo * max(factor, 0.2), hi * max(factor, 0.2)))


@dataclass
class Traffic:
    """Drives the three simulators like buyers, a warehouse and a marketplace incident would."""

    amazon: AmazonSimulator
    ml: MercadoLibreSim
    tpl: ThreePLState
    catalog: DemoCatalog
    set_price: PriceSetter
    schedule: Schedule = field(default_factory=Schedule)
    rng: random.Random = field(default_factory=lambda: random.Random(2026))
    sales: int = 0
    ml_orders: list[tuple[int, str, int]] = field(default_factory=list)  # (order id, sku, qty)
    amazon_orders: list[tuple[str, str, int]] = field(default_factory=list)
    _t0: float = 0.0

    async def run(self) -> None:
        """The whole story; cancelled when the demo stops."""
        self._t0 = asyncio.get_running_loop().time()
        await asyncio.gather(self._buyers(), self._story(), self._warehouse())

    async def _buyers(self) -> None:
        await self._at(self.schedule.buyers_from)
        while True:
            await asyncio.sleep(self.rng.uniform(*self.schedule.sale_interval))
            self.sale()

    def sale(self, sku: str | None = None) -> None:
        """One buyer buys 1–2 units of something on Amazon or MercadoLibre."""
        products = [p for p in self.catalog.products if p.amazon or p.mercadolibre]
        product = next((p for p in products if p.sku == sku), None) or self.rng.choice(products)
        qty = self.rng.choice((1, 1, 1, 2))
        on_amazon = product.amazon and (not product.mercadolibre or self.rng.random() < 0.5)
        try:
            if on_amazon:
                order = self.amazon.market.make_sale({"items": [{"sku": product.sku, "qty": qty}]})
                self.amazon_orders.append((order.order_id, product.sku, qty))
                where = f"Amazon order {order.order_id}"
            else:
                item, variation = self.catalog.ml_items[product.sku]
                ml_order = self.ml.market.sale(item, int(variation) if variation else None, qty)
                self.ml_orders.append((ml_order.id, product.sku, qty))
                where = f"MercadoLibre order {ml_order.id}"
        except Exception as err:  # a listing the marketplace shows as sold out: the buyer moves on
            log.info("demo: buyer found it sold out", sku=product.sku, channel="amazon" if on_amazon else "ml",
                     reason=str(err)[:80])
            return
        self.sales += 1
        log.info(f"demo: sale {qty} x {product.sku}", where=where)

    async def _warehouse(self) -> None:
        """The 3PL ships paid orders a little after they arrive."""
        while True:
            await asyncio.sleep(self.rng.uniform(4, 8) * max(0.2, self.schedule.outage / 60))
            pending = [("mercadolibre", str(o), s, q) for o, s, q in self.ml_orders] + \
                      [("amazon", o, s, q) for o, s, q in self.amazon_orders]
            if not pending:
                continue
            channel, order_id, sku, qty = pending[0]
            (self.ml_orders if channel == "mercadolibre" else self.amazon_orders).pop(0)
            ref = f"{channel}:{order_id}"
            try:
                self.tpl.create_order(ref, [(sku, qty)])
                self.tpl.ship(ref)
            except Exception as err:
                log.info("demo: 3PL could not ship", order=ref, reason=str(err)[:80])
                continue
            log.info(f"demo: 3PL shipped {qty} x {sku}", order=ref)

    async def _story(self) -> None:
        s = self.schedule
        await self._at(s.flash_sale)
        log.info("demo: FLASH SALE on the stoneware mug - ten buyers in three seconds")
        for _ in range(10):
            self.sale("MUG-STONE-WHT")
            await asyncio.sleep(0.3)
        await self._at(s.price_change)
        log.info("demo: seller raises the brass pen to 32.00 everywhere")
        await self.set_price("PEN-BRASS", Decimal("32.00"))
        await self._at(s.receipt)
        self.tpl.receive([("CANDLE-SOY-CIT", 24), ("TEA-CHAI-100", 30)], "PO-2026-118", complete=True)
        log.info("demo: 3PL received PO-2026-118 (24 citrus candles, 30 chai)")
        await self._at(s.cancellation)
        if self.ml_orders:
            order_id, sku, _ = self.ml_orders.pop()
            self.ml.market.order_action(order_id, "cancel")
            log.info(f"demo: buyer cancelled MercadoLibre order {order_id} ({sku})")
        await self._at(s.outage)
        log.warning(f"demo: MercadoLibre OUTAGE begins - {s.outage_length:.0f} s of 503s; watch its tile turn")
        await self.ml.set_mode(OutageMode.ERROR)
        await asyncio.sleep(s.outage_length)
        await self.ml.set_mode(OutageMode.UP)
        log.warning("demo: MercadoLibre is back - queued pushes drain now")

    async def _at(self, moment: float) -> None:
        await asyncio.sleep(max(0.0, self._t0 + moment - asyncio.get_running_loop().time()))
