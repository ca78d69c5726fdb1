-- Fine-tuning jobs, their events and checkpoints, and the single tuning-worker slot.
CREATE TABLE ft_jobs (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    model TEXT NOT NULL,              -- base model name
    suffix TEXT,
    status TEXT NOT NULL,             -- validating_files | queued | running | succeeded | failed | cancelled
    training_file TEXT NOT NULL,      -- file-… id
    validation_file TEXT,
    hyperparameters TEXT NOT NULL DEFAULT '{}',   -- as asked ("auto" kept)
    resolved TEXT NOT NULL DEFAULT '{}',          -- the values chosen, after auto heuristics
    repro TEXT NOT NULL DEFAULT '{}',             -- seed, dataset sha256, library versions
    seed INTEGER NOT NULL,
    fine_tuned_model TEXT,
    trained_tokens INTEGER,
    error TEXT,                       -- JSON {code, message, param} when failed
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    worker_id TEXT,
    worker_pid INTEGER,
    worker_host TEXT,
    lease_expires_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    estimated_finish REAL
);
CREATE INDEX ft_jobs_project ON ft_jobs(project_id, created_at);
CREATE INDEX ft_jobs_status ON ft_jobs(status, created_at);

CREATE TABLE ft_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    job_id TEXT NOT NULL REFERENCES ft_jobs(id) ON DELETE CASCADE,
    level TEXT NOT NULL,              -- info | warn | error
    type TEXT NOT NULL,               -- message | metrics
    message TEXT NOT NULL,
    data TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX ft_events_job ON ft_events(job_id, seq);

CREATE TABLE ft_checkpoints (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES ft_jobs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    epoch REAL NOT NULL,
    path TEXT NOT NULL,
    model_name TEXT,
    metrics TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    UNIQUE(job_id, step)
);

-- At most one tuning worker runs at a time; its row is its lease.
CREATE TABLE ft_worker (
    slot INTEGER PRIMARY KEY CHECK (slot = 1),
    worker_id TEXT NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    heartbeat_at REAL NOT NULL
);
