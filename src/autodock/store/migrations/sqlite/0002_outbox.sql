-- Outbox: notifications written in the same transaction as the deploy result they
-- announce, then delivered (at least once) by the background sender.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    deploy_id       INTEGER REFERENCES deploys (id),
    event_id        INTEGER,
    channel         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    event           TEXT NOT NULL,
    order_key       TEXT NOT NULL,
    target          TEXT,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    sent_at         REAL,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at, id);
CREATE INDEX outbox_order ON outbox (order_key, status, id);
