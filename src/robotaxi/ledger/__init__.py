"""A verifiable ledger: an RFC 9162 Merkle log of trips and safety events, C2SP signed checkpoints, offline proofs.

The public API, for the simulator and the service::

    from robotaxi.ledger import Ledger, SigningKey, TripRecord

    key = SigningKey.generate("robotaxi.local/ledger")      # or SigningKey.from_file(path)
    with Ledger.open_or_create("run.ledger", origin=key.name) as ledger:
        first = ledger.append_records([TripRecord(...), ...])  # durable when it returns
        note = ledger.sign_checkpoint(key)

See ``docs/ledger.md`` for the formats and the guarantees.
"""

from .audit import AuditProblem as AuditProblem
from .audit import AuditReport as AuditReport
from .audit import audit as audit
from .bundle import ConsistencyBundle as ConsistencyBundle
from .bundle import InclusionBundle as InclusionBundle
from .bundle import load_bundle as load_bundle
from .bundle import verify_bundle as verify_bundle
from .log import DEFAULT_ORIGIN as DEFAULT_ORIGIN
from .log import AppendResult as AppendResult
from .log import DuplicateIdError as DuplicateIdError
from .log import Ledger as Ledger
from .merkle import hash_leaf as hash_leaf
from .merkle import verify_consistency as verify_consistency
from .merkle import verify_inclusion as verify_inclusion
from .note import Checkpoint as Checkpoint
from .note import SigningKey as SigningKey
from .note import VerifierKey as VerifierKey
from .note import open_checkpoint as open_checkpoint
from .records import BlobDigest as BlobDigest
from .records import JsonlError as JsonlError
from .records import LedgerRecord as LedgerRecord
from .records import SafetyEvent as SafetyEvent
from .records import TripRecord as TripRecord
from .records import canonical_json as canonical_json
from .records import read_jsonl as read_jsonl
from .records import record_bytes as record_bytes
from .store import LedgerStore as LedgerStore
from .store import SQLiteStore as SQLiteStore
