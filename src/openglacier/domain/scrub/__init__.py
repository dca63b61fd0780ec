"""The scrubber: every stored byte verified against its stored hashes, on a
schedule, at a bounded rate, one process of a cluster at a time; damage
recorded (domain/damage.py) and repaired from a second copy where there is one.

- pacing.py: when a pass is due, the token bucket that bounds its read rate;
- state.py: the lease, the persisted pass progress (cursor), the status;
- verify.py: one copy of one blob against its leaf digests, step by step;
- repair.py: what a blob's copies say, and the restore from the good one;
- scrubber.py: the pass itself, and the background loop.
"""

from openglacier.domain.scrub.scrubber import PassReport, Scrubber, damage_dict
from openglacier.domain.scrub.state import LeaseLost, ScrubBusy, status

__all__ = ["LeaseLost", "PassReport", "ScrubBusy", "Scrubber", "damage_dict", "status"]
