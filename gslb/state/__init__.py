"""The shared state in Redis, as the API and the DNS shell both see it: the key layout,
atomic writes with their change log, reading it back, and migrating older layouts."""
