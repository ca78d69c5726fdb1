-- Pipelines (chatbots) with every version kept, eval runs with their items, the response
-- cache that makes re-running an unchanged rung free, and climbs.
CREATE TABLE bots (
    id TEXT NOT NULL,                 -- bot-…, the same for every version of one name
    project_id TEXT NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    config TEXT NOT NULL,             -- the pipeline as JSON
    created_at REAL NOT NULL,
    PRIMARY KEY (project_id, name, version)
);
CREATE INDEX bots_id ON bots(id);

CREATE TABLE eval_runs (
    id TEXT PRIMARY KEY,              -- eval-…
    project_id TEXT NOT NULL REFERENCES projects(id),
    pipeline TEXT NOT NULL,           -- bot name@version, or the rung's name
    fingerprint TEXT NOT NULL,        -- hash of the pipeline's config
    test_set TEXT,
    summary TEXT NOT NULL,            -- metrics, headline with interval, latency, tokens, cost
    report_dir TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX eval_runs_project ON eval_runs(project_id, created_at);

CREATE TABLE eval_items (
    run_id TEXT NOT NULL REFERENCES eval_runs(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    item TEXT NOT NULL,               -- input messages, reference, sources as JSON
    output TEXT NOT NULL,
    parsed TEXT,                      -- JSON
    valid INTEGER NOT NULL,
    passed INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}', -- citations, hits, judge score
    PRIMARY KEY (run_id, idx)
);

-- Keyed by a hash of (model, adapter, final prompt, generation settings): the pipeline
-- version and the input fully determine it, and a changed knowledge base changes the prompt.
CREATE TABLE response_cache (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    finish_reason TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    created_at REAL NOT NULL
);

CREATE TABLE climbs (
    id TEXT PRIMARY KEY,              -- climb-…
    project_id TEXT NOT NULL REFERENCES projects(id),
    config TEXT NOT NULL,
    summary TEXT NOT NULL,
    report_dir TEXT,
    created_at REAL NOT NULL
);
