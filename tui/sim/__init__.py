"""A loopback HTTP server that speaks the video APIs wan-tui drives (demo, tests, benchmarks).

    with SimServer.running(SimConfig(mean_s=0.5)) as sim:
        base = sim.url("venice")   # http://127.0.0.1:PORT/venice/api/v1

See server.py for routing and the provider-module contract, state.py for faults and the
`[sim:...]` prompt triggers, venice.py for the simulated Venice API. PyAV and Pillow load
only when the first clip is rendered.
"""

from tui.sim.server import SimServer
from tui.sim.state import Faults, SimConfig, SimJob, SimState, parse_triggers

__all__ = ["Faults", "SimConfig", "SimJob", "SimServer", "SimState", "parse_triggers"]
