"""What every role shares beside the state schema: logging and the Redis connection.

`healthchecks/` may import this package and `gslb.schema`, nothing else of `gslb`
(an import-linter contract in pyproject.toml says so).
"""
