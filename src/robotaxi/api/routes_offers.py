"""Operator routes for trip offers: a WebSocket that pushes them, a long-poll fallback, accept and decline
(see :mod:`.offers`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import MutableMapping
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, WebSocket, WebSocketDisconnect, WebSocketException, status
from starlette.concurrency import run_in_threadpool

from ..store import tables
from . import offers
from .auth import Principal, Role, SocketGuard
from .commands import OperatorRef
from .deps import Operator, Service
from .live import LiveService
from .schemas import OfferList, OfferOut

router = APIRouter(prefix="/v1/operator/offers", tags=["operators"])
OfferId = Annotated[uuid.UUID, Path(description="the offer's id")]
OPERATOR_SOCKET = SocketGuard((Role.OPERATOR,))
#: Longest a long-poll waits for an offer (seconds).
MAX_WAIT_S = 60.0


def _pending(service: LiveService, operator_id: int) -> list[OfferOut]:
    with service.db.connect() as conn:
        return offers.pending(conn, operator_id)


@router.get(
    "",
    response_model=OfferList,
    summary="My pending offers; with wait_s, wait up to that long for one (long-poll fallback of the WebSocket)",
)
async def list_offers(
    service: Service,
    op: Operator,
    wait_s: Annotated[
        float,
        Query(ge=0, le=MAX_WAIT_S, description="seconds to wait while none is pending (the server may cap it)"),
    ] = 0,
) -> OfferList:
    # Subscribe before reading, so an offer made in between still wakes this poll.
    sub = service.offers_hub.subscribe(op.id)
    try:
        found = await run_in_threadpool(_pending, service, op.id)
        if found or wait_s == 0:
            return OfferList(data=found)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(wait_s, service.settings.long_poll_max_s)
        while not found:
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                message = await asyncio.wait_for(sub.queue.get(), timeout=left)
            except TimeoutError:
                break
            if message["type"] == "offer":
                found = await run_in_threadpool(_pending, service, op.id)
        return OfferList(data=found)
    finally:
        service.offers_hub.unsubscribe(sub)


@router.post("/{offer_id}/accept", response_model=OfferOut, summary="Accept an offer before it expires")
async def accept_offer(offer_id: OfferId, service: Service, op: Operator) -> OfferOut:
    return await service.run(offers.answer(op, str(offer_id), True))


@router.post(
    "/{offer_id}/decline", response_model=OfferOut, summary="Decline an offer: the trip goes to another vehicle"
)
async def decline_offer(offer_id: OfferId, service: Service, op: Operator) -> OfferOut:
    return await service.run(offers.answer(op, str(offer_id), False))


def _operator_of(service: LiveService, who: Principal) -> OperatorRef | None:
    with service.db.connect() as conn:
        row = conn.execute(sa.select(tables.operators).where(tables.operators.c.id == who.operator_id)).first()
    return None if row is None else OperatorRef(int(row.id), str(row.name), str(row.provider_id))


@router.websocket("/ws")
async def offers_socket(websocket: WebSocket, who: Annotated[Principal, Depends(OPERATOR_SOCKET)]) -> None:
    """Push: on connecting, ``{"type": "offer", "offer": ...}`` for every pending offer, then one message per new
    offer and ``{"type": "lapsed" | "withdrawn", "offer_id"}`` when one closes without an answer. Answers go to
    ``POST /v1/operator/offers/{offer_id}/accept|decline``."""
    service: LiveService = websocket.app.state.service
    op = await run_in_threadpool(_operator_of, service, who)
    if op is None:
        raise WebSocketException(status.WS_1008_POLICY_VIOLATION, "the operator of this token no longer exists")
    sub = service.offers_hub.subscribe(op.id)
    receiver: asyncio.Future[MutableMapping[str, Any]] | None = None
    try:
        await websocket.accept()
        sent: set[str] = set()
        for offer in await run_in_threadpool(_pending, service, op.id):
            sent.add(offer.offer_id)
            await websocket.send_json({"type": "offer", "offer": offer.model_dump(mode="json")})
        receiver = asyncio.ensure_future(websocket.receive())  # notices a client that goes away
        while True:
            getter = asyncio.ensure_future(sub.queue.get())
            done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if receiver in done:
                getter.cancel()
                message = receiver.result()
                if message["type"] == "websocket.disconnect":
                    return
                receiver = asyncio.ensure_future(websocket.receive())  # clients need not send; ignore what they do
                continue
            note = getter.result()
            if note["type"] == "offer" and note["offer"]["offer_id"] in sent:
                continue  # made between the subscription and the first read
            await websocket.send_json(note)
    except WebSocketDisconnect:
        return
    finally:
        service.offers_hub.unsubscribe(sub)
        if receiver is not None:
            receiver.cancel()
