from __future__ import annotations

from gslb.core import pooldoc
from gslb.core.policy import STEPS


def test_every_step_the_schema_accepts_has_a_module_stating_its_rule() -> None:
    assert set(STEPS) == set(pooldoc.STEPS)
    for name, module in STEPS.items():
        assert module.__doc__ and module.__doc__.startswith(f"{name}:"), name
        assert "Rule:" in module.__doc__, name
        assert callable(module.apply), name
