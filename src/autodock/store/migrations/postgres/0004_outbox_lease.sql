-- Outbox leases: the sender claims the due messages it is about to send, so replicas
-- sharing one database never send a message at the same time. An expired lease (its
-- replica died mid-send) frees the message for the others.
ALTER TABLE outbox ADD COLUMN lease_owner TEXT;
ALTER TABLE outbox ADD COLUMN lease_until DOUBLE PRECISION;
