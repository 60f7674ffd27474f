"""Channel adapters: pure functions from a raw message's bytes to an Outcome (no Faust here)."""

from stream.channels.canonical import adapt_canonical
from stream.channels.email import adapt_email
from stream.channels.ivr import adapt_ivr
from stream.channels.outcome import Accepted, OptedOut, Outcome, Reason, Rejected, TimeLimits
from stream.channels.sms import adapt_sms

__all__ = [
    "Accepted",
    "OptedOut",
    "Outcome",
    "Reason",
    "Rejected",
    "TimeLimits",
    "adapt_canonical",
    "adapt_email",
    "adapt_ivr",
    "adapt_sms",
]
