"""patchListingsItem semantics: JSON Patch on top-level listing attributes, checked then applied.

Problems with attributes are never HTTP errors: Amazon answers 200 with status INVALID and issues.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from syncd.sandbox.amazon_state import Listing

OPS = {"add", "replace", "merge", "delete"}
PATH = re.compile(r"^/attributes/([a-z0-9_]+)$")
# Fields that identify which entry of a multi-valued attribute a merge or delete targets.
SELECTORS: dict[str, tuple[str, ...]] = {
    "fulfillment_availability": ("fulfillment_channel_code",),
    "purchasable_offer": ("marketplace_id", "currency", "audience"),
}
# Product type Amazon's own offer-only examples send; accepted for any listing.
GENERIC_PRODUCT_TYPE = "PRODUCT"


def issue(
    code: str, message: str, attribute: str | None = None, category: str = "INVALID_ATTRIBUTE"
) -> dict[str, Any]:
    """One `Issue` object as Amazon writes it."""
    found: dict[str, Any] = {"code": code, "message": message, "severity": "ERROR", "categories": [category]}
    if attribute:
        found["attributeNames"] = [attribute]
    return found


def request_problem(body: Any) -> str | None:
    """Why the request body is not a ListingsItemPatchRequest at all (answered with 400)."""
    if not isinstance(body, dict):
        return "Request body must be a JSON object."
    if not isinstance(body.get("productType"), str) or not body["productType"]:
        return "productType is required."
    patches = body.get("patches")
    if not isinstance(patches, list) or not patches or not all(isinstance(p, dict) for p in patches):
        return "patches must be a non-empty array of patch operations."
    return None


def _is_quantity(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _price_ok(offer: dict[str, Any]) -> bool:
    for price in offer.get("our_price", []):
        if not isinstance(price, dict):
            return False
        for slot in price.get("schedule", []):
            value = slot.get("value_with_tax") if isinstance(slot, dict) else None
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                return False
    return True


def _value_issues(name: str, op: str, values: Any) -> list[dict[str, Any]]:
    if op == "delete" and values is None:
        return []
    if not isinstance(values, list) or not values or not all(isinstance(v, dict) for v in values):
        return [issue("4000001", f"The value of '{name}' must be a non-empty array of objects.", name)]
    problems = []
    for entry in values:
        for selector in SELECTORS.get(name, ()):
            if selector == "audience":
                continue
            if not isinstance(entry.get(selector), str) or not entry[selector]:
                problems.append(
                    issue("4000002", f"'{selector}' is required for '{name}'.", name, "MISSING_ATTRIBUTE")
                )
        if name == "fulfillment_availability" and "quantity" in entry and not _is_quantity(entry["quantity"]):
            problems.append(issue("4000003", "'quantity' must be a non-negative integer.", name))
        if name == "purchasable_offer" and not _price_ok(entry):
            problems.append(issue("18155", "'our_price' must be a positive amount.", name, "INVALID_PRICE"))
    return problems


def check(listing: Listing | None, product_type: str, patches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issues that make the submission INVALID; empty when it can be ACCEPTED."""
    if listing is None:
        # No 404 is declared for patchListingsItem; an offer-only patch of an unknown SKU is
        # refused as an invalid submission (the exact issue Amazon gives is not documented).
        return [
            issue(
                "4000004",
                "No listings item exists for this SKU in the requested marketplaces.",
                None,
                "MISSING_ATTRIBUTE",
            )
        ]
    problems = []
    if product_type not in (listing.product_type, GENERIC_PRODUCT_TYPE):
        problems.append(
            issue("4000005", f"Product type '{product_type}' does not match the listings item.", None)
        )
    for patch in patches:
        op, path = patch.get("op"), patch.get("path")
        match = PATH.match(path) if isinstance(path, str) else None
        if op not in OPS:
            problems.append(issue("4000006", f"Unsupported patch operation '{op}'.", None))
        elif match is None:
            problems.append(issue("4000007", f"Path '{path}' is not a top-level attribute.", None))
        else:
            problems.extend(_value_issues(match.group(1), op, patch.get("value")))
    return problems


def _selector(name: str, entry: dict[str, Any]) -> tuple[Any, ...]:
    keys = SELECTORS.get(name, ("marketplace_id",))
    return tuple(entry.get(k, "ALL" if k == "audience" else None) for k in keys)


def apply(listing: Listing, patches: list[dict[str, Any]]) -> None:
    """Apply checked patches to the listing's attributes."""
    for patch in patches:
        match = PATH.match(patch["path"])
        assert match is not None
        name, op = match.group(1), patch["op"]
        values: list[dict[str, Any]] | None = copy.deepcopy(patch.get("value"))
        if values is None:
            listing.attributes.pop(name, None)  # only a delete may come without a value
        elif op in ("add", "replace"):
            listing.attributes[name] = values
        elif op == "merge":
            current = listing.attributes.setdefault(name, [])
            for entry in values:
                target = next((c for c in current if _selector(name, c) == _selector(name, entry)), None)
                if target is None:
                    current.append(entry)
                else:
                    target.update(entry)
        else:
            drop = {_selector(name, entry) for entry in values}
            kept = [c for c in listing.attributes.get(name, []) if _selector(name, c) not in drop]
            listing.attributes[name] = kept
        if name == "fulfillment_availability" and any(
            e.get("fulfillment_channel_code") == "DEFAULT" for e in listing.attributes.get(name, [])
        ):
            # A DEFAULT quantity makes the offer merchant-fulfilled, as it does on Amazon.
            listing.fba = False
