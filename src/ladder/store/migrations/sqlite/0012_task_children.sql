-- A climb's rungs are tasks of their own (kind `rung`, ladder.queue.rungs) that name their climb in
-- parent_id, so rungs run on different workers; `result` is what a finished rung hands its climb
-- (JSON text: its eval run, setup, loss curve; while a fine-tune rung runs, the job it started).
ALTER TABLE tasks ADD COLUMN parent_id TEXT REFERENCES tasks(id);
ALTER TABLE tasks ADD COLUMN result TEXT;
CREATE INDEX tasks_parent ON tasks(parent_id, created_at);
