-- Events: every push accepted by intake, stored before it is acknowledged.
CREATE TABLE events (
    id            INTEGER PRIMARY KEY,
    source        TEXT NOT NULL,
    delivery_id   TEXT UNIQUE,
    registry      TEXT,
    repo          TEXT NOT NULL,
    tag           TEXT NOT NULL,
    digest        TEXT,
    pusher        TEXT,
    pushed_at     REAL,
    callback_url  TEXT,
    received_at   REAL NOT NULL,
    status        TEXT NOT NULL,
    matched_rules TEXT NOT NULL DEFAULT '[]',
    payload       TEXT
);
CREATE INDEX events_push ON events (repo, tag, received_at);

-- Deploys: one per (event, target); the queue is the rows in status 'queued'.
CREATE TABLE deploys (
    id            INTEGER PRIMARY KEY,
    event_id      INTEGER NOT NULL REFERENCES events (id),
    rule          TEXT NOT NULL,
    kind          TEXT NOT NULL,
    target        TEXT NOT NULL,
    target_key    TEXT NOT NULL,
    action        TEXT NOT NULL,
    status        TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    not_before    REAL NOT NULL DEFAULT 0,
    lease_owner   TEXT,
    lease_until   REAL,
    old_image     TEXT,
    new_image     TEXT,
    created_at    REAL NOT NULL,
    started_at    REAL,
    finished_at   REAL,
    output        TEXT,
    error         TEXT,
    progress      TEXT,
    superseded_by INTEGER
);
-- Claims walk queued rows in id order and stop at the first runnable one.
CREATE INDEX deploys_queue ON deploys (status, id);
CREATE INDEX deploys_target ON deploys (target_key, status);
CREATE INDEX deploys_event ON deploys (event_id);
