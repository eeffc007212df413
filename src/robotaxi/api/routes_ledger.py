"""Regulator routes of the ledger: the latest signed checkpoint and inclusion proofs for trips and safety events.

A proof is an ``robotaxi.ledger/inclusion-v1`` bundle (``docs/ledger.md``) that anyone checks offline with the
verifier key: ``robotaxi ledger verify bundle.json --key ledger.vkey``.
"""

from __future__ import annotations

import base64
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from ..errors import ServiceError
from ..ledger import InclusionBundle
from .auth import Principal, Role, allow
from .deps import Service
from .schemas import CheckpointOut

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])
Auditor = Annotated[Principal, Depends(allow(Role.REGULATOR, Role.ADMIN))]


@router.get("/checkpoint", response_model=CheckpointOut, summary="The ledger's latest signed checkpoint")
def checkpoint(service: Service, _: Auditor) -> CheckpointOut:
    with service.ledger.reader() as ledger:
        cp = ledger.latest_checkpoint()
        origin = ledger.origin
    if cp is None:
        raise ServiceError("no checkpoint has been signed yet", status=404, code="not_found")
    return CheckpointOut(
        origin=origin,
        size=cp.size,
        root=base64.b64encode(cp.root).decode("ascii"),
        note=cp.note,
        verifier_key=service.ledger.verifier,
    )


def _proof(service: Any, kind: str, ident: str) -> dict[str, Any]:
    with service.ledger.reader() as ledger:
        index = ledger.find_id(kind, ident)
        if index is None:
            raise ServiceError(
                f"{ident} is not in the ledger (yet: records are appended within a second)",
                status=404,
                code="not_found",
            )
        if not any(c.size > index for c in ledger.checkpoints()):
            raise ServiceError(
                f"{ident} is in the ledger at {index} but no signed checkpoint covers it yet "
                f"(one is signed every {service.settings.checkpoint_interval_s:g} s)",
                status=404,
                code="not_checkpointed",
            )
        out: dict[str, Any] = InclusionBundle.build(ledger, index).to_json()
    return out


@router.get("/trips/{trip_id}/proof", summary="Inclusion proof of a completed trip (offline-verifiable bundle)")
def trip_proof(trip_id: Annotated[uuid.UUID, Path()], service: Service, _: Auditor) -> dict[str, Any]:
    return _proof(service, "trip", str(trip_id))


@router.get("/safety-events/{event_id}/proof", summary="Inclusion proof of a reported safety event")
def safety_proof(event_id: Annotated[uuid.UUID, Path()], service: Service, _: Auditor) -> dict[str, Any]:
    return _proof(service, "safety_event", str(event_id))
