-- The whole first schema. Times are ISO-8601 UTC text ("2026-12-03T16:42:55.123456+00:00"), which
-- sorts correctly as text.

CREATE TABLE products (
    sku            TEXT PRIMARY KEY,
    title          TEXT NOT NULL DEFAULT '',
    safety_buffer  INTEGER NOT NULL DEFAULT 0 CHECK (safety_buffer >= 0),
    lead_time_days INTEGER NOT NULL DEFAULT 14 CHECK (lead_time_days >= 0),
    price          TEXT,
    is_kit         INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE kit_components (
    kit_sku       TEXT NOT NULL REFERENCES products(sku),
    component_sku TEXT NOT NULL REFERENCES products(sku),
    qty           INTEGER NOT NULL CHECK (qty > 0),
    PRIMARY KEY (kit_sku, component_sku)
);
CREATE INDEX kit_components_by_component ON kit_components(component_sku);

CREATE TABLE locations (
    id      TEXT PRIMARY KEY,
    name    TEXT NOT NULL DEFAULT '',
    kind    TEXT NOT NULL DEFAULT 'warehouse',
    sources TEXT NOT NULL DEFAULT '["manual"]'  -- JSON list, highest priority first
);

CREATE TABLE listings (
    id                INTEGER PRIMARY KEY,
    sku               TEXT NOT NULL REFERENCES products(sku),
    channel           TEXT NOT NULL,
    external_id       TEXT NOT NULL,
    variation_id      TEXT NOT NULL DEFAULT '',
    location          TEXT NOT NULL REFERENCES locations(id),
    cap               INTEGER CHECK (cap IS NULL OR cap >= 0),
    share             REAL NOT NULL DEFAULT 1.0 CHECK (share >= 0 AND share <= 1),
    paused            INTEGER NOT NULL DEFAULT 0,
    managed           INTEGER NOT NULL DEFAULT 1,  -- 0: the channel manages quantity (FBA)
    price             TEXT,
    target_qty        INTEGER,
    observed_qty      INTEGER,
    observed_price    TEXT,
    observed_status   TEXT,
    observed_at       TEXT,
    matched_at        TEXT,  -- last time the channel was seen showing the target
    UNIQUE (channel, external_id, variation_id)
);
CREATE INDEX listings_by_sku ON listings(sku);

CREATE TABLE stock (
    sku            TEXT NOT NULL REFERENCES products(sku),
    location       TEXT NOT NULL REFERENCES locations(id),
    on_hand        INTEGER NOT NULL DEFAULT 0,
    counted_qty    INTEGER,
    counted_as_of  TEXT,
    counted_source TEXT,
    PRIMARY KEY (sku, location)
);

-- Every change of on hand, with its reason and reference. Append-only.
CREATE TABLE ledger (
    id         INTEGER PRIMARY KEY,
    sku        TEXT NOT NULL,
    location   TEXT NOT NULL,
    delta      INTEGER NOT NULL,
    reason     TEXT NOT NULL,
    ref        TEXT NOT NULL,
    at         TEXT NOT NULL,  -- when it happened at the source
    recorded   TEXT NOT NULL   -- when syncd wrote it
);
CREATE INDEX ledger_by_item ON ledger(sku, location, at);
-- A shipment moves on hand once per reference, whichever report of it arrives first.
CREATE UNIQUE INDEX ledger_one_shipment ON ledger(sku, location, ref) WHERE reason = 'shipment';

-- Every count reported, accepted or not: a rejected count is kept as a disagreement.
CREATE TABLE counts (
    id       INTEGER PRIMARY KEY,
    sku      TEXT NOT NULL,
    location TEXT NOT NULL,
    qty      INTEGER NOT NULL,
    as_of    TEXT NOT NULL,
    source   TEXT NOT NULL,
    verdict  TEXT NOT NULL,
    drift    INTEGER,
    recorded TEXT NOT NULL
);
CREATE INDEX counts_by_item ON counts(sku, location, verdict, source);

CREATE TABLE orders (
    channel      TEXT NOT NULL,
    order_id     TEXT NOT NULL,
    state        TEXT NOT NULL,
    last_updated TEXT NOT NULL,
    created_at   TEXT,
    hold_until   TEXT,
    recorded     TEXT NOT NULL,
    PRIMARY KEY (channel, order_id)
);
CREATE INDEX orders_by_recorded ON orders(recorded);

-- One row per (order line, SKU): a kit line expands into its components.
CREATE TABLE order_lines (
    channel     TEXT NOT NULL,
    order_id    TEXT NOT NULL,
    line_id     TEXT NOT NULL,
    sku         TEXT NOT NULL,
    kit_sku     TEXT,
    location    TEXT NOT NULL,
    qty         INTEGER NOT NULL CHECK (qty > 0),
    state       TEXT NOT NULL,
    listing_id  INTEGER,
    PRIMARY KEY (channel, order_id, line_id, sku)
);
CREATE INDEX order_lines_by_sku ON order_lines(sku, location, state);

CREATE TABLE reservations (
    id         TEXT PRIMARY KEY,
    sku        TEXT NOT NULL REFERENCES products(sku),
    location   TEXT NOT NULL,
    qty        INTEGER NOT NULL CHECK (qty > 0),
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    released   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX reservations_live ON reservations(sku, location, released, expires_at);

CREATE TABLE inbox (
    id          INTEGER PRIMARY KEY,
    dedupe_key  TEXT NOT NULL UNIQUE,
    source      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    state       TEXT NOT NULL,  -- applied / pending_fetch / failed / ignored
    attempts    INTEGER NOT NULL DEFAULT 0,
    received_at TEXT NOT NULL,
    applied_at  TEXT,
    error       TEXT
);
CREATE INDEX inbox_pending ON inbox(state, id);

-- Desired value per (listing, field): a newer desire replaces a pending older one.
CREATE TABLE outbox (
    listing_id   INTEGER NOT NULL REFERENCES listings(id),
    field        TEXT NOT NULL,
    channel      TEXT NOT NULL,
    value        TEXT NOT NULL,
    version      INTEGER NOT NULL,
    state        TEXT NOT NULL,  -- pending / dead
    attempts     INTEGER NOT NULL DEFAULT 0,
    deferrals    INTEGER NOT NULL DEFAULT 0,
    next_attempt TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_error   TEXT,
    PRIMARY KEY (listing_id, field)
);
CREATE INDEX outbox_due ON outbox(channel, state, next_attempt);

-- The last value each channel confirmed per (listing, field); a confirmation never moves it back.
CREATE TABLE pushed (
    listing_id INTEGER NOT NULL REFERENCES listings(id),
    field      TEXT NOT NULL,
    value      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    at         TEXT NOT NULL,
    PRIMARY KEY (listing_id, field)
);

-- The writer's last computation per (sku, location), so reads never recompute.
CREATE TABLE availability (
    sku         TEXT NOT NULL,
    location    TEXT NOT NULL,
    on_hand     INTEGER NOT NULL,
    committed   INTEGER NOT NULL,
    reserved    INTEGER NOT NULL,
    buffer      INTEGER NOT NULL,
    available   INTEGER NOT NULL,
    oversold_by INTEGER NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (sku, location)
);

-- Every push attempt and its outcome, for the explain trace.
CREATE TABLE push_log (
    id         INTEGER PRIMARY KEY,
    listing_id INTEGER NOT NULL,
    field      TEXT NOT NULL,
    value      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    outcome    TEXT NOT NULL,  -- ok / retry / rate_limited / dead / superseded
    detail     TEXT,
    at         TEXT NOT NULL
);
CREATE INDEX push_log_by_listing ON push_log(listing_id, id);

CREATE TABLE channel_state (
    channel              TEXT PRIMARY KEY,
    cursors              TEXT NOT NULL DEFAULT '{}',
    last_success         TEXT,
    last_attempt         TEXT,
    last_error           TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    rate_limited_until   TEXT,
    token_expiry         TEXT
);

CREATE TABLE tokens (
    channel       TEXT PRIMARY KEY,
    refresh_token TEXT NOT NULL,
    access_token  TEXT,
    expires_at    TEXT,
    updated       TEXT NOT NULL
);

CREATE TABLE alerts (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL,
    key        TEXT NOT NULL,  -- one open alert per (kind, key)
    sku        TEXT,
    channel    TEXT,
    message    TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    acked_at   TEXT
);
CREATE UNIQUE INDEX alerts_open ON alerts(kind, key) WHERE acked_at IS NULL;

CREATE TABLE seq (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO seq VALUES ('outbox_version', 0);
