"""Select: sessions and cases for qualitative study.

The strategies listed under ``selection:`` in the config each write
``results/selection/<name>.csv``; ``results/selection/index.json`` lists what ran.
"""

from __future__ import annotations

from dyadflow import io

STRATEGIES: dict[str, object] = {}


def run(strategies: list[dict], out_index: str) -> None:
    unknown = [s["strategy"] for s in strategies if s["strategy"] not in STRATEGIES]
    if unknown:
        from dyadflow.errors import DyadflowError

        raise DyadflowError(f"unknown selection strategy '{unknown[0]}' (known: {', '.join(sorted(STRATEGIES)) or 'none yet'})", key="selection")
    io.write_json(out_index, {"strategies": [{"name": s["name"], "strategy": s["strategy"]} for s in strategies]})
