-- One tuning worker per machine, not per database: the GPU machines of a deployment that share one
-- PostgreSQL train side by side, each claiming queued jobs under a lease. The row is a live lease
-- (no data): a worker of the older schema simply takes a new row at its next start.
DROP TABLE ft_worker;
CREATE TABLE ft_worker (
    host TEXT PRIMARY KEY,
    worker_id TEXT NOT NULL,
    pid INTEGER NOT NULL,
    heartbeat_at DOUBLE PRECISION NOT NULL
);
