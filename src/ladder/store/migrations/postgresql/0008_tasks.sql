-- Durable eval and climb tasks (ladder.queue): the same table as sqlite/0008_tasks.sql. Times are Unix
-- seconds (DOUBLE PRECISION); params, error and progress are JSON text; cancel_requested is 0/1.
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
    lease_expires_at DOUBLE PRECISION,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION
);
CREATE INDEX tasks_claim ON tasks(status, kind, created_at);
CREATE INDEX tasks_project ON tasks(project_id, kind, created_at);
