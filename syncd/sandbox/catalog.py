"""The demo seller: about 25 products of a small home-goods shop, laid out across three channels."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from syncd.domain.catalog import KIT_HEADER, LISTING_HEADER


@dataclass(frozen=True, slots=True)
class DemoProduct:
    """One product of the demo shop and where it is listed."""

    sku: str
    title: str
    price: float
    on_hand: int
    buffer: int = 0
    amazon: bool = True
    mercadolibre: bool = True
    ml_group: str | None = None  # products sharing an ML item as variations
    fba: int = 0  # units in Amazon FBA (a second pool), 0 for none


@dataclass
class DemoCatalog:
    """Products, the kit, and the ids each simulator gave them (filled in at seeding)."""

    products: list[DemoProduct]
    kit_sku: str = "GIFT-MUG-SET"
    kit_components: dict[str, int] = field(default_factory=lambda: {"MUG-STONE-WHT": 2, "TEA-EARLGREY-100": 1})
    ml_items: dict[str, tuple[str, str]] = field(default_factory=dict)  # sku -> (item id, variation id or "")

    def csv(self) -> str:
        """The catalog in syncd's import format."""
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(LISTING_HEADER)
        for p in self.products:
            w.writerow([p.sku, p.title, "main", "threepl", p.sku, "", p.buffer, "", ""])
        w.writerow([self.kit_sku, self.kit.title, "main", "", "", "", 0, "", ""])
        for p in [*self.products, self.kit]:
            if p.amazon:
                w.writerow([p.sku, p.title, "main", "amazon", p.sku, "", p.buffer, "", ""])
            if p.fba:
                w.writerow([p.sku, p.title, "fba", "amazon", f"{p.sku}-FBA", "", p.buffer, "", ""])
            if p.mercadolibre and p.sku in self.ml_items:
                item, variation = self.ml_items[p.sku]
                w.writerow([p.sku, p.title, "main", "mercadolibre", item, variation, p.buffer, "", ""])
        w.writerow(KIT_HEADER)
        for part, qty in self.kit_components.items():
            w.writerow([self.kit_sku, part, qty])
        return out.getvalue()

    @property
    def kit(self) -> DemoProduct:
        """The gift set: two mugs and a box of tea, sold as one."""
        return DemoProduct(self.kit_sku, "Gift set - 2 stoneware mugs + Earl Grey tea", 39.90, 0, amazon=True)


def demo_catalog() -> DemoCatalog:
    """The shop: mugs, tees in three sizes (variations on MercadoLibre), candles, tea, notebooks."""
    return DemoCatalog(products=[
        DemoProduct("MUG-STONE-WHT", "Stoneware mug 350 ml - white", 14.90, 48, buffer=2, fba=12),
        DemoProduct("MUG-STONE-BLK", "Stoneware mug 350 ml - black", 14.90, 30, buffer=2),
        DemoProduct("MUG-TRAVEL-SS", "Stainless travel mug 450 ml", 24.50, 22, buffer=1),
        DemoProduct("TEE-ORG-S", "Organic cotton tee - S", 19.00, 18, ml_group="TEE"),
        DemoProduct("TEE-ORG-M", "Organic cotton tee - M", 19.00, 25, ml_group="TEE"),
        DemoProduct("TEE-ORG-L", "Organic cotton tee - L", 19.00, 14, ml_group="TEE"),
        DemoProduct("CANDLE-SOY-LAV", "Soy candle 200 g - lavender", 16.00, 40, fba=20),
        DemoProduct("CANDLE-SOY-CED", "Soy candle 200 g - cedarwood", 16.00, 35),
        DemoProduct("CANDLE-SOY-CIT", "Soy candle 200 g - citrus", 16.00, 9),
        DemoProduct("TEA-EARLGREY-100", "Earl Grey loose tea 100 g", 9.50, 60, buffer=3),
        DemoProduct("TEA-SENCHA-100", "Japanese sencha 100 g", 12.00, 28),
        DemoProduct("TEA-CHAI-100", "Masala chai blend 100 g", 10.50, 6),
        DemoProduct("NOTE-A5-DOT", "A5 dotted notebook, linen cover", 13.00, 55),
        DemoProduct("NOTE-A5-LINE", "A5 lined notebook, linen cover", 13.00, 32, mercadolibre=False),
        DemoProduct("NOTE-A6-POCKET", "A6 pocket notebook, 3-pack", 11.00, 44),
        DemoProduct("PEN-BRASS", "Solid brass pen", 29.00, 12, buffer=1),
        DemoProduct("COASTER-CORK-4", "Cork coasters, set of 4", 8.00, 70),
        DemoProduct("TOWEL-LINEN-2", "Linen tea towels, set of 2", 18.50, 24),
        DemoProduct("APRON-CANVAS", "Waxed canvas apron", 34.00, 10, amazon=False),
        DemoProduct("BOWL-CERAMIC-S", "Ceramic bowl 15 cm", 12.50, 26),
        DemoProduct("BOWL-CERAMIC-L", "Ceramic bowl 20 cm", 16.50, 15),
        DemoProduct("TRAY-OAK", "Oak serving tray", 42.00, 7, buffer=1),
        DemoProduct("INFUSER-SS", "Stainless tea infuser", 6.50, 90),
        DemoProduct("TOTE-CANVAS", "Heavy canvas tote bag", 15.00, 38),
    ])
