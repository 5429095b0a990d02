"""The job engine: no Textual here, ever (tests enforce it)."""

from tui.engine.engine import Engine, EngineError
from tui.engine.events import (
    AllSettled,
    BalanceChanged,
    BudgetChanged,
    EngineEvent,
    JobChanged,
    Notice,
)

__all__ = ["AllSettled", "BalanceChanged", "BudgetChanged", "Engine", "EngineError",
           "EngineEvent", "JobChanged", "Notice"]
