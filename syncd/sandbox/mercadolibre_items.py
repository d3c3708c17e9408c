"""Simulated MercadoLibre items: variations, PUT semantics, and ML's own stock/status coupling."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from syncd.sandbox.mercadolibre_core import IdSource, SimConfig, api_error, iso_z, money, validation_error

OUT_OF_STOCK = "out_of_stock"
_PUT_FIELDS = {"available_quantity", "price", "status", "variations", "title"}


@dataclass
class SimVariation:
    """One variation: stock and price live here when an item has variations."""

    id: int
    price: float
    available_quantity: int
    user_product_id: str
    seller_sku: str | None = None
    attribute_combinations: list[dict[str, Any]] = field(default_factory=list)
    sold_quantity: int = 0

    def to_json(self, include_attributes: bool) -> dict[str, Any]:
        """The variation as `GET /items/{id}` shows it."""
        body: dict[str, Any] = {
            "id": self.id,
            "price": money(self.price),
            "attribute_combinations": self.attribute_combinations,
            "available_quantity": self.available_quantity,
            "sold_quantity": self.sold_quantity,
            "sale_terms": [],
            "picture_ids": [],
            "catalog_product_id": None,
            "seller_custom_field": None,
            "user_product_id": self.user_product_id,
            "inventory_id": None,
        }
        # A variation's SKU is visible only with ?include_attributes=all (APIS_EVIDENCE §2.3).
        if include_attributes and self.seller_sku:
            body["attributes"] = [{"id": "SELLER_SKU", "name": "SKU", "value_name": self.seller_sku}]
        return body


@dataclass
class SimItem:
    """A listing; `status_log` records who changed the status (seller or ML) for the control plane."""

    id: str
    title: str
    price: float
    available_quantity: int
    user_product_id: str
    date_created: datetime
    last_updated: datetime
    seller_sku: str | None = None
    status: str = "active"
    sub_status: list[str] = field(default_factory=list)
    variations: list[SimVariation] = field(default_factory=list)
    sold_quantity: int = 0
    price_automation: bool = False
    status_log: list[dict[str, str]] = field(default_factory=list)

    @property
    def total_quantity(self) -> int:
        """Item-level quantity: the sum over variations when there are any."""
        if self.variations:
            return sum(v.available_quantity for v in self.variations)
        return self.available_quantity

    def variation(self, variation_id: int) -> SimVariation | None:
        """The variation with this id, if any."""
        return next((v for v in self.variations if v.id == variation_id), None)

    def ups(self) -> list[str]:
        """User-product ids of this listing (one per variation, or the item's own)."""
        return [v.user_product_id for v in self.variations] or [self.user_product_id]

    def stock_snapshot(self) -> dict[str, int]:
        """Quantity per user product, to see which ones a change touched."""
        if self.variations:
            return {v.user_product_id: v.available_quantity for v in self.variations}
        return {self.user_product_id: self.available_quantity}

    def set_status(self, status: str, sub_status: list[str], by: str, now: datetime) -> None:
        """Change the status and record who did it (`seller` or `mercadolibre`)."""
        if self.status != status or self.sub_status != sub_status:
            self.status, self.sub_status = status, sub_status
            self.status_log.append({"at": iso_z(now), "status": status, "by": by})

    def couple_status(self, now: datetime) -> None:
        """ML pauses an item at 0 stock and re-activates it on restock, unless the seller paused it."""
        if self.status == "active" and self.total_quantity == 0:
            self.set_status("paused", [OUT_OF_STOCK], "mercadolibre", now)
        elif self.status == "paused" and OUT_OF_STOCK in self.sub_status and self.total_quantity > 0:
            self.set_status("active", [], "mercadolibre", now)

    def to_json(self, config: SimConfig, include_attributes: bool = False) -> dict[str, Any]:
        """The item as `GET /items/{id}` shows it."""
        attributes = [{"id": "SELLER_SKU", "name": "SKU", "value_name": self.seller_sku}] if self.seller_sku else []
        prices = [v.price for v in self.variations] or [self.price]
        return {
            "id": self.id,
            "site_id": config.site_id,
            "seller_id": config.user_id,
            "title": self.title,
            "category_id": f"{config.site_id}1055",
            "price": money(min(prices)),
            "base_price": money(min(prices)),
            "currency_id": config.currency_id,
            "initial_quantity": self.total_quantity + self.sold_quantity,
            "available_quantity": self.total_quantity,
            "sold_quantity": self.sold_quantity,
            "status": self.status,
            "sub_status": list(self.sub_status),
            "seller_custom_field": self.seller_sku,
            "attributes": attributes,
            "user_product_id": None if self.variations else self.user_product_id,
            "family_name": None,
            "inventory_id": None,
            "shipping": {"mode": "me2", "logistic_type": "cross_docking"},
            "variations": [v.to_json(include_attributes) for v in self.variations],
            "date_created": iso_z(self.date_created),
            "last_updated": iso_z(self.last_updated),
        }


def new_item(spec: dict[str, Any], ids: IdSource, now: datetime) -> SimItem:
    """A listing from a control-plane spec (`title`, `price`, `available_quantity` or
    `variations[{available_quantity, price?, seller_sku?, attribute_combinations?}]`)."""
    price = float(spec.get("price", 100))
    variations = [
        SimVariation(
            id=int(v.get("id") or ids.variation()),
            price=float(v.get("price", price)),
            available_quantity=int(v.get("available_quantity", 0)),
            user_product_id=ids.user_product(),
            seller_sku=v.get("seller_sku"),
            attribute_combinations=v.get("attribute_combinations")
            or [{"id": "COLOR", "name": "Color", "value_name": f"Color {n + 1}"}],
        )
        for n, v in enumerate(spec.get("variations") or [])
    ]
    item = SimItem(
        id=str(spec.get("id") or ids.item()),
        title=str(spec.get("title", "Simulated item")),
        price=price,
        available_quantity=0 if variations else int(spec.get("available_quantity", 0)),
        user_product_id=ids.user_product(),
        date_created=now,
        last_updated=now,
        seller_sku=spec.get("seller_sku"),
        status=str(spec.get("status", "active")),
        variations=variations,
        price_automation=bool(spec.get("price_automation", False)),
    )
    if item.status == "active" and item.total_quantity == 0:
        item.status, item.sub_status = "paused", [OUT_OF_STOCK]
    return item


def update_item(item: SimItem, body: Any, ids: IdSource, now: datetime) -> list[str]:
    """Apply `PUT /items/{id}` atomically (validate all, then change); returns warnings. Raises SimError."""
    if not isinstance(body, dict) or not body:
        raise api_error(400, "bad_request", "body must be a non-empty JSON object")
    unknown = sorted(set(body) - _PUT_FIELDS)
    if unknown:
        raise api_error(400, "body.invalid_fields", f"Invalid fields {unknown}")
    if item.status == "closed":
        raise validation_error("item.status.invalid", "Cannot modify a closed item.", ["item.status"])
    warnings: list[str] = []
    price = body.get("price")
    if price is not None and item.price_automation:
        # Since 2026-03-18 a price-only PUT on an automated item is refused; mixed ones drop the price.
        if set(body) == {"price"}:
            raise validation_error(
                "item.price.automated", "Price is managed by an active price automation.", ["item.price"]
            )
        warnings.append("price ignored: item has an active price automation")
        price = None
    if price is not None and (not isinstance(price, int | float) or isinstance(price, bool) or price <= 0):
        raise validation_error("item.price.invalid", "Invalid price.", ["item.price"])
    new_variations = _plan_variations(item, body.get("variations"), ids)
    qty = body.get("available_quantity")
    if qty is not None:
        if item.variations or new_variations is not None:
            raise validation_error(
                "item.available_quantity.invalid",
                "Items with variations take available_quantity per variation.",
                ["item.available_quantity"],
            )
        if not isinstance(qty, int) or isinstance(qty, bool) or qty < 0:
            raise validation_error("item.available_quantity.invalid", "Invalid quantity.", ["item.available_quantity"])
    status = body.get("status")
    if status is not None and status not in ("active", "paused", "closed"):
        raise validation_error("item.status.invalid", f"Invalid status {status}.", ["item.status"])
    total = (
        sum(v.available_quantity for v in new_variations)
        if new_variations is not None
        else (qty if qty is not None else item.total_quantity)
    )
    if status == "active" and total == 0:
        raise validation_error(
            "item.status.invalid",
            "Is not possible to activate an item without stock.",
            ["item.status", "item.available_quantity"],
        )
    if new_variations is not None:
        item.variations = new_variations
    if qty is not None:
        item.available_quantity = qty
    if price is not None:
        item.price = float(price)
        for variation in item.variations:
            variation.price = float(price)
    if "title" in body:
        item.title = str(body["title"])
    if status is not None:
        item.set_status(status, [], "seller", now)
    item.couple_status(now)
    return warnings


def _plan_variations(item: SimItem, raw: Any, ids: IdSource) -> list[SimVariation] | None:
    """The variation list a PUT leaves: omitted ids are deleted, id-less entries are new."""
    if raw is None:
        return None
    if not isinstance(raw, list) or not item.variations:
        raise validation_error("item.variations.invalid", "Invalid variations.", ["item.variations"])
    planned: list[SimVariation] = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise validation_error("item.variations.invalid", "Invalid variation.", ["item.variations"])
        qty = entry.get("available_quantity")
        if qty is not None and (not isinstance(qty, int) or isinstance(qty, bool) or qty < 0):
            raise validation_error("item.variations.available_quantity.invalid", "Invalid quantity.", ["variations"])
        price = entry.get("price")
        if "id" not in entry:
            # An entry without id is a brand-new variation: new id, no sales history.
            combos = entry.get("attribute_combinations")
            if not combos:
                raise validation_error(
                    "item.variations.attribute_combinations.required",
                    "New variations need attribute_combinations.",
                    ["variations"],
                )
            planned.append(
                SimVariation(
                    ids.variation(),
                    float(price or item.price),
                    int(qty or 0),
                    ids.user_product(),
                    attribute_combinations=combos,
                )
            )
            continue
        current = item.variation(int(entry["id"])) if str(entry["id"]).isdigit() else None
        if current is None:
            raise api_error(400, "bad_request", f"Variation {entry['id']} does not belong to item {item.id}")
        planned.append(
            SimVariation(
                current.id,
                float(price) if price is not None else current.price,
                qty if qty is not None else current.available_quantity,
                current.user_product_id,
                current.seller_sku,
                current.attribute_combinations,
                current.sold_quantity,
            )
        )
    if not planned:
        raise validation_error("item.variations.invalid", "An item needs one variation.", ["variations"])
    return planned
