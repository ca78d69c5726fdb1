-- Projects, files, the model registry and the usage ledger.
CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);
INSERT INTO projects(id, name, created_at) VALUES ('proj-default', 'default', strftime('%s','now'));

-- Uploaded files; the bytes live under blobs/ at a generated id, never the user's name.
CREATE TABLE files (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id),
    filename TEXT NOT NULL,
    purpose TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    blob_path TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX files_project ON files(project_id, created_at);

-- Registered models. backend: torch | llamacpp | remote. Built-in packaged models are
-- not rows: the registry adds them at run time.
CREATE TABLE models (
    name TEXT PRIMARY KEY,
    project_id TEXT REFERENCES projects(id),
    backend TEXT NOT NULL,
    path TEXT,
    base_model TEXT,
    adapter_path TEXT,
    base_url TEXT,
    remote_model TEXT,
    api_key_env TEXT,
    meta TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL
);

-- Every model call, embedded chunk and trained token, per project.
CREATE TABLE usage (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL,
    model TEXT NOT NULL,
    kind TEXT NOT NULL,            -- chat | embed | train
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    embedded_chunks INTEGER NOT NULL DEFAULT 0,
    trained_tokens INTEGER NOT NULL DEFAULT 0,
    latency_ms REAL NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    source TEXT,                   -- what made the call: chat, eval-…, ftjob-…, kb-…
    created_at REAL NOT NULL
);
CREATE INDEX usage_project_time ON usage(project_id, created_at);
