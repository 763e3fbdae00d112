"""Health checkers and load agents (the `gslb checker` and `gslb agent` roles).

Shares only the state schema with `gslb`; see issue "Distributed health checkers".
"""
