"""Parsing the catalog CSV into a plan, reporting unknown or ambiguous mappings instead of guessing."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

LISTING_HEADER = ["sku", "title", "location", "channel", "external_id", "variation_id", "safety_buffer", "cap", "share"]
KIT_HEADER = ["kit_sku", "component_sku", "qty"]


@dataclass(frozen=True, slots=True)
class ProductSpec:
    """One product as the CSV describes it."""

    sku: str
    title: str
    safety_buffer: int


@dataclass(frozen=True, slots=True)
class ListingSpec:
    """One listing row of the CSV."""

    sku: str
    location: str
    channel: str
    external_id: str
    variation_id: str
    cap: int | None
    share: float


@dataclass
class CatalogPlan:
    """What an import would write, or the errors that stop it."""

    products: dict[str, ProductSpec] = field(default_factory=dict)
    stock_locations: set[tuple[str, str]] = field(default_factory=set)
    listings: list[ListingSpec] = field(default_factory=list)
    kits: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def _int(text: str, what: str, line: int, errors: list[str], minimum: int = 0) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        errors.append(f"line {line}: {what} {text!r} is not a whole number")
        return None
    if value < minimum:
        errors.append(f"line {line}: {what} must be ≥ {minimum}, got {value}")
        return None
    return value


def _share(text: str, line: int, errors: list[str]) -> float:
    text = text.strip()
    if not text:
        return 1.0
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        errors.append(f"line {line}: share {text!r} is not a number")
        return 1.0
    if not 0 <= value <= 1:
        errors.append(f"line {line}: share must lie between 0 and 1 (or 0% and 100%), got {text}")
    return value


def parse_catalog(text: str, channels: set[str], locations: set[str]) -> CatalogPlan:
    """Parse listing rows, then an optional `kit_sku,component_sku,qty` section, into a plan."""
    plan = CatalogPlan()
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [c.strip() for c in rows[0]] != LISTING_HEADER:
        plan.errors.append(f"line 1: header must be {','.join(LISTING_HEADER)}")
        return plan
    mappings: dict[tuple[str, str, str], tuple[str, int]] = {}
    in_kits = False
    for number, raw in enumerate(rows[1:], start=2):
        cells = [c.strip() for c in raw]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if cells == KIT_HEADER:
            in_kits = True
            continue
        if in_kits:
            _kit_row(plan, cells, number)
        else:
            _listing_row(plan, cells, number, channels, locations, mappings)
    for kit, parts in plan.kits.items():
        if kit not in plan.products:
            plan.errors.append(f"kit {kit}: not a product in this file")
        for part in parts:
            if part == kit:
                plan.errors.append(f"kit {kit}: cannot contain itself")
            elif part not in plan.products:
                plan.errors.append(f"kit {kit}: unknown component {part}")
    return plan


def _listing_row(
    plan: CatalogPlan,
    cells: list[str],
    line: int,
    channels: set[str],
    locations: set[str],
    mappings: dict[tuple[str, str, str], tuple[str, int]],
) -> None:
    if len(cells) != len(LISTING_HEADER):
        plan.errors.append(f"line {line}: expected {len(LISTING_HEADER)} columns, got {len(cells)}")
        return
    sku, title, location, channel, external_id, variation_id, buffer_text, cap_text, share_text = cells
    if not sku:
        plan.errors.append(f"line {line}: sku is empty")
        return
    if location not in locations:
        plan.errors.append(f"line {line}: unknown location {location!r} (known: {', '.join(sorted(locations))})")
        return
    buffer = _int(buffer_text, "safety_buffer", line, plan.errors) or 0
    spec = ProductSpec(sku=sku, title=title, safety_buffer=buffer)
    known = plan.products.get(sku)
    if known is None:
        plan.products[sku] = spec
    elif (title and known.title and title != known.title) or (buffer_text and buffer != known.safety_buffer):
        plan.errors.append(f"line {line}: {sku} contradicts an earlier row (title or safety_buffer)")
    plan.stock_locations.add((sku, location))
    if not channel and not external_id:
        return
    if channel not in channels:
        plan.errors.append(f"line {line}: unknown channel {channel!r} (known: {', '.join(sorted(channels))})")
        return
    if not external_id:
        plan.errors.append(f"line {line}: external_id is empty for channel {channel}")
        return
    key = (channel, external_id, variation_id)
    if key in mappings:
        other_sku, other_line = mappings[key]
        what = "duplicate" if other_sku == sku else f"ambiguous (line {other_line} maps it to {other_sku})"
        name = f"{external_id}/{variation_id}" if variation_id else external_id
        plan.errors.append(f"line {line}: {channel} {name} is {what}")
        return
    mappings[key] = (sku, line)
    plan.listings.append(ListingSpec(
        sku=sku, location=location, channel=channel, external_id=external_id, variation_id=variation_id,
        cap=_int(cap_text, "cap", line, plan.errors), share=_share(share_text, line, plan.errors),
    ))


def _kit_row(plan: CatalogPlan, cells: list[str], line: int) -> None:
    if len(cells) < 3 or not cells[0] or not cells[1]:
        plan.errors.append(f"line {line}: kit rows are kit_sku,component_sku,qty")
        return
    qty = _int(cells[2], "qty", line, plan.errors, minimum=1)
    if qty is None:
        if not cells[2].strip():
            plan.errors.append(f"line {line}: qty is empty")
        return
    parts = plan.kits.setdefault(cells[0], {})
    if cells[1] in parts:
        plan.errors.append(f"line {line}: kit {cells[0]} lists {cells[1]} twice")
        return
    parts[cells[1]] = qty
