"""Job-completion notifications (spec 4.7): targets and the outbox Deliverer."""

from openglacier.notify.base import DeliveryError, LogTarget, Target
from openglacier.notify.deliver import Deliverer, DeliveryReport
from openglacier.notify.targets import Targets, parse_targets

__all__ = [
    "Deliverer",
    "DeliveryError",
    "DeliveryReport",
    "LogTarget",
    "Target",
    "Targets",
    "parse_targets",
]
