"""The one plain event the pipeline works on, whichever schema it was delivered in."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.domain.resources import ServiceRef


@dataclass(frozen=True)
class InventoryEvent:
    id: str
    type: str  # canonical name, e.g. Microsoft.ApiManagement.APICreated
    source: str  # the APIM service's ARM id as the event gave it
    service: ServiceRef
    subject: str
    time: datetime
    data: dict[str, Any] = field(default_factory=dict)
    schema: str = "cloudEvents"
