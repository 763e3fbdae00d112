from __future__ import annotations

from gslb.core import pooldoc
from gslb.core.policy import STEPS, Context, Precision
from gslb.core.state import ClusterState
from tests.policy.strategies import member, pool


def test_every_step_the_schema_accepts_has_a_module_stating_its_rule() -> None:
    assert tuple(STEPS) == pooldoc.STEPS, "the schema's names are the registry's"
    schema = pooldoc.PoolDoc.model_json_schema()["properties"]["policy"]["items"]
    assert schema["enum"] == list(STEPS)
    for name, module in STEPS.items():
        assert module.__doc__ and module.__doc__.startswith(f"{name}:"), name
        assert "Rule:" in module.__doc__, name
        assert "Origin:" in module.__doc__, name


def test_each_step_declares_what_the_answer_path_needs() -> None:
    ms = [member(i, "lon" if i % 2 else "nyc", f"isp-{'ab'[i % 2]}") for i in range(1, 5)]
    p = pool(ms)
    ctx = Context(p, ClusterState())
    for name, step in STEPS.items():
        assert isinstance(step.FILTERS, bool), name
        assert step.ORDERS in ("place", "lead", None), name
        assert step.period(p.members, ctx) >= 1, name
        assert step.reads(p) <= {"client", "health", "load", "paths", "rtt"}, name
        needs = step.precision(p)
        assert isinstance(needs, Precision), name
        # A step that looks at the client's address says how much of it.
        assert ("client" in step.reads(p)) == (not needs.blind), name


def test_a_step_says_whether_it_reads_weights_and_is_right() -> None:
    import dataclasses

    from gslb.core.state import Load

    def members(weights: list[int]) -> list:
        return [
            dataclasses.replace(
                member(i, "lon" if i % 2 else "nyc", f"isp-{'ab'[i % 2]}"), weight=w
            )
            for i, w in enumerate(weights, start=1)
        ]

    even, heavy = members([1, 1, 1, 1]), members([1, 1, 1, 9])
    state = ClusterState(load={m.address: Load(sessions=10.0 * i) for i, m in enumerate(even)})
    for name, step in STEPS.items():
        outputs = []
        for ms in (even, heavy):
            p = pool(ms)
            outputs.append(
                [
                    tuple(
                        m.address
                        for m in step.apply(
                            p.members, Context(p, state, slot=s, client_key=bytes([s]))
                        )
                    )
                    for s in range(40)
                ]
            )
        assert (outputs[0] != outputs[1]) == step.WEIGHS, name
