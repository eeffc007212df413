"""Regulator routes of the ledger: signed checkpoints, inclusion proofs for trips and safety events, and
consistency proofs between two checkpoints.

A proof is an ``robotaxi.ledger/inclusion-v1`` or ``consistency-v1`` bundle (``docs/ledger.md``) that anyone checks
offline with the verifier key: ``robotaxi ledger verify bundle.json --key ledger.vkey``. A consistency bundle
proves (RFC 9162 section 2.1.4) that the log of the newer checkpoint extends the older one: nothing recorded was
changed or removed between them.

The same log is also served as a C2SP tlog-tiles log under ``/v1/ledger/tlog/`` (``checkpoint``, ``tile/<L>/<N>``,
``tile/entries/<N>``, see :mod:`robotaxi.ledger.tiles`): a monitor or an auditor's mirror fetches the tree and the
entries with plain GETs, up to the latest signed checkpoint, and checks them with the verifier key alone.
"""

from __future__ import annotations

import base64
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from ..errors import LedgerError, ServiceError
from ..ledger import ConsistencyBundle, InclusionBundle
from ..ledger.tiles import parse_tile_path, read_resource
from .auth import Principal, Role, allow
from .deps import Service
from .schemas import CheckpointBrief, CheckpointList, CheckpointOut

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


@router.get("/checkpoints", response_model=CheckpointList, summary="Every signed checkpoint, oldest first")
def checkpoints(service: Service, _: Auditor) -> CheckpointList:
    with service.ledger.reader() as ledger:
        cps = ledger.checkpoints()
    return CheckpointList(
        data=[
            CheckpointBrief(
                size=c.size, root=base64.b64encode(c.root).decode("ascii"), note=c.note, signed_ms=c.created_ms
            )
            for c in cps
        ],
        verifier_key=service.ledger.verifier,
    )


@router.get(
    "/consistency",
    summary="Consistency proof between two signed checkpoints (offline-verifiable bundle)",
    responses={404: {"description": "No signed checkpoint of that size"}},
)
def consistency(
    service: Service,
    _: Auditor,
    old_size: Annotated[int, Query(ge=0, le=2**62, description="size of the older signed checkpoint")],
    new_size: Annotated[
        int | None, Query(ge=0, le=2**62, description="size of the newer one (default: the latest checkpoint)")
    ] = None,
) -> dict[str, Any]:
    if new_size is not None and new_size < old_size:
        raise ServiceError(
            f"new_size: {new_size} is smaller than old_size {old_size}", status=422, field="new_size", code="bad_param"
        )
    with service.ledger.reader() as ledger:
        by_size = {c.size: c for c in ledger.checkpoints()}  # the latest checkpoint of each size
        if not by_size:
            raise ServiceError("no checkpoint has been signed yet", status=404, code="not_found")
        newest = max(by_size)
        if new_size is None:
            new_size = newest
            if new_size < old_size:
                raise ServiceError(
                    f"old_size: {old_size} is larger than the latest checkpoint ({newest})",
                    status=422,
                    field="old_size",
                    code="bad_param",
                )
        for name, size in (("old_size", old_size), ("new_size", new_size)):
            if size not in by_size:
                raise ServiceError(
                    f"{name}: no signed checkpoint of size {size} (GET /v1/ledger/checkpoints lists them)",
                    status=404,
                    field=name,
                    code="unknown_checkpoint",
                )
        out: dict[str, Any] = ConsistencyBundle.build(ledger, by_size[old_size].note, by_size[new_size].note).to_json()
    return out


_TILE_CACHE = "private, max-age=31536000, immutable"  # a tile (partial ones too) never changes


@router.get(
    "/tlog/checkpoint",
    summary="The latest signed checkpoint, as a C2SP tlog-tiles log serves it (text/plain)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, 404: {"description": "No checkpoint signed yet"}},
)
def tlog_checkpoint(service: Service, _: Auditor) -> Response:
    with service.ledger.reader() as ledger:
        cp = ledger.latest_checkpoint()
    if cp is None:
        raise ServiceError("no checkpoint has been signed yet", status=404, code="not_found")
    return Response(cp.note, media_type="text/plain; charset=utf-8", headers={"Cache-Control": "private, max-age=5"})


@router.get(
    "/tlog/tile/{tile_path:path}",
    summary="A Merkle tile or an entry bundle of the C2SP tlog-tiles log (application/octet-stream)",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        404: {"description": "Not covered by the latest signed checkpoint"},
        422: {"description": "Not a tlog-tiles path"},
    },
)
def tlog_tile(
    tile_path: Annotated[str, Path(description="<L>/<N>[.p/<W>] or entries/<N>[.p/<W>], N as x001/x234/067")],
    service: Service,
    _: Auditor,
) -> Response:
    path = f"tile/{tile_path}"
    try:
        ref = parse_tile_path(path)
    except LedgerError as e:
        raise ServiceError(str(e), status=422, field="tile_path", code="bad_param") from e
    with service.ledger.reader() as ledger:
        cp = ledger.latest_checkpoint()
        size = 0 if cp is None else cp.size
        if ref.end() > size:
            raise ServiceError(
                f"{path} is not covered by the latest signed checkpoint (size {size}; this resource needs "
                f"{ref.end()} entries)",
                status=404,
                code="not_found",
            )
        data = read_resource(ledger, path, size)
    return Response(data, media_type="application/octet-stream", headers={"Cache-Control": _TILE_CACHE})
