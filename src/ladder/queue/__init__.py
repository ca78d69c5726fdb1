"""The durable task queue for evals and climbs: rows in `tasks`, claimed under leases by any worker."""
