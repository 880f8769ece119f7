-- Pauses: deploys whose rule ('rule:NAME') or target ('service:NAME') is paused stay
-- queued (held) until resumed; newer pushes still supersede them, so the latest wins.
CREATE TABLE pauses (
    key       TEXT PRIMARY KEY,
    reason    TEXT,
    paused_by TEXT,
    paused_at DOUBLE PRECISION NOT NULL
);
