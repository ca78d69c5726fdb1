-- API keys for the HTTP server: only the sha256 of a key is stored; the key is shown once.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL DEFAULT '',
    prefix TEXT NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    admin INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    last_used_at REAL,
    revoked_at REAL
);
CREATE INDEX api_keys_project ON api_keys(project_id);
