"""A verifiable ledger: RFC 9162 Merkle log, C2SP signed checkpoints and offline proofs."""
