"""v1 event models of every topic in the contract (msgspec structs: strict, fast, exportable)."""

from stream.models.deadletter import DeadLetter, DeadLetterSource
from stream.models.dispatch import Dispatch
from stream.models.followup import Followup
from stream.models.lifecycle import LifecycleEvent
from stream.models.raw import EmailAnswer, IvrCall, SmsReply
from stream.models.response import Acsi, CsiRating, Scores, SurveyResponse
from stream.models.snapshot import KpiSnapshot

__all__ = [
    "Acsi",
    "CsiRating",
    "DeadLetter",
    "DeadLetterSource",
    "Dispatch",
    "EmailAnswer",
    "Followup",
    "IvrCall",
    "KpiSnapshot",
    "LifecycleEvent",
    "Scores",
    "SmsReply",
    "SurveyResponse",
]
