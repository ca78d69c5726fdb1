-- Durable eval and climb tasks (ladder.queue): a row per task, claimed by any `ladder worker` (or the
-- server's embedded one) under a lease, so a restart or a second server loses nothing. Times are Unix
-- seconds; params, error and progress are JSON text; cancel_requested is 0/1.
CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id),
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    run_id TEXT,
    error TEXT,
    progress TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    worker_id TEXT,
    worker_host TEXT,
    worker_pid INTEGER,
    lease_expires_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL
);
CREATE INDEX tasks_claim ON tasks(status, kind, created_at);
CREATE INDEX tasks_project ON tasks(project_id, kind, created_at);
