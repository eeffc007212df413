"""``robotaxi ledger``: keys, appends, signed checkpoints, offline proofs and audits of the verifiable ledger."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from ..errors import LedgerError, VerificationError
from ..ledger import (
    DEFAULT_ORIGIN,
    ConsistencyBundle,
    InclusionBundle,
    Ledger,
    SigningKey,
    VerifierKey,
    audit,
    load_bundle,
)
from .app import app, console, sub_app

ledger_app = sub_app("Verifiable ledger of trips and safety events (RFC 9162 log, C2SP signed checkpoints).")
app.add_typer(ledger_app, name="ledger")

LogOpt = Annotated[Path, typer.Option("--log", "-l", envvar="ROBOTAXI_LEDGER", help="Ledger database file (SQLite).")]
KeyOpt = Annotated[
    Path, typer.Option("--key", "-k", envvar="ROBOTAXI_LEDGER_KEY", help="Private key file (from `ledger keygen`).")
]


def _write_or_print(text: str, out: Path | None) -> None:
    if out is None:
        console.out(text, end="" if text.endswith("\n") else "\n", highlight=False)
    else:
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as e:
            raise LedgerError(f"cannot write {out}: {e.strerror}") from e
        console.print(f"wrote {out}")


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise LedgerError(f"cannot read {what} {path}: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise LedgerError(f"{what} {path} is not UTF-8 text") from e


@ledger_app.command("keygen")
def keygen(
    prefix: Annotated[Path, typer.Argument(help="Writes PREFIX.key (private, mode 0600) and PREFIX.vkey.")],
    name: Annotated[str, typer.Option(help="Key name; must equal the ledger origin.")] = DEFAULT_ORIGIN,
) -> None:
    """Generate an Ed25519 note signing key and its verifier key."""
    key = SigningKey.generate(name)
    priv, pub = prefix.with_name(prefix.name + ".key"), prefix.with_name(prefix.name + ".vkey")
    if pub.exists():
        raise LedgerError(f"{pub} already exists; refusing to overwrite a key")
    key.to_file(priv)
    try:
        pub.write_text(str(key.verifier()) + "\n", encoding="utf-8")
    except OSError as e:
        raise LedgerError(f"cannot write {pub}: {e.strerror}") from e
    console.print(f"private key: {priv}\nverifier key: {pub}\n{key.verifier()}")


@ledger_app.command("init")
def init(
    log: LogOpt = Path("ledger.db"),
    key: Annotated[
        Path | None, typer.Option("--key", "-k", help="Private or verifier key file: binds the ledger to it.")
    ] = None,
    origin: Annotated[str | None, typer.Option(help="Origin line; default: the key's name.")] = None,
) -> None:
    """Create an empty ledger."""
    vkey = VerifierKey.from_file(key) if key is not None else None
    chosen = origin or (vkey.name if vkey else DEFAULT_ORIGIN)
    with Ledger.create(log, origin=chosen, verifier=vkey):
        pass
    console.print(f"created {log} (origin {chosen})")


@ledger_app.command("append")
def append(
    file: Annotated[Path, typer.Argument(help="JSON lines: one JSON object per line.")],
    log: LogOpt = Path("ledger.db"),
) -> None:
    """Append a JSON-lines file, all or nothing; malformed lines are listed with their numbers.

    Trips and safety events already in the ledger (same id, same content) are skipped and counted; one that
    reuses an id with different content refuses the whole file.
    """
    with Ledger.open(log) as led:
        res = led.append_jsonl(file)
        size = led.size
    where = f" at {res.first}..{res.first + res.appended - 1}" if res.appended else ""
    skipped = f"; skipped {res.skipped} already recorded" if res.skipped else ""
    console.print(f"appended {res.appended} entries{where}{skipped}; ledger size {size}")


@ledger_app.command("checkpoint")
def checkpoint(
    log: LogOpt = Path("ledger.db"),
    key: KeyOpt = Path("ledger.key"),
    out: Annotated[Path | None, typer.Option(help="Also write the signed checkpoint here.")] = None,
) -> None:
    """Sign a checkpoint of the ledger's current size and root, store it and print it."""
    signer = SigningKey.from_file(key)
    with Ledger.open(log) as led:
        note = led.sign_checkpoint(signer)
    _write_or_print(note, out)


@ledger_app.command("prove")
def prove(
    index: Annotated[int, typer.Option("--index", "-i", help="Entry index (0-based).")],
    log: LogOpt = Path("ledger.db"),
    out: Annotated[Path | None, typer.Option(help="Write the bundle here instead of printing it.")] = None,
) -> None:
    """Print an inclusion bundle: the entry, its proof and the latest signed checkpoint containing it."""
    with Ledger.open(log) as led:
        bundle = InclusionBundle.build(led, index)
    _write_or_print(json.dumps(bundle.to_json(), indent=2) + "\n", out)


@ledger_app.command("verify")
def verify(
    bundle: Annotated[Path, typer.Argument(help="Inclusion or consistency bundle (JSON).")],
    key: Annotated[Path, typer.Option("--key", "-k", help="The log's verifier key file (or its text).")],
) -> None:
    """Verify a proof bundle offline, with nothing but the log's public key."""
    vkey = VerifierKey.parse(str(key)) if not key.exists() and "+" in str(key) else VerifierKey.from_file(key)
    b = load_bundle(_read(bundle, "bundle"))
    if isinstance(b, InclusionBundle):
        cp = b.verify(vkey)
        console.print(f"OK: entry {b.index} is in {cp.origin} at tree size {cp.size}")
        console.out(b.entry.decode("utf-8", errors="replace"), highlight=False)
    else:
        old, new = b.verify(vkey)
        console.print(f"OK: {new.origin} at size {new.size} extends size {old.size}")


@ledger_app.command("tiles")
def tiles_cmd(
    out: Annotated[Path, typer.Argument(help="Folder to publish into; serve it as the log's URL prefix.")],
    log: LogOpt = Path("ledger.db"),
) -> None:
    """Publish the log as C2SP tlog-tiles files: the latest signed checkpoint and every tile and entry bundle of
    its tree (full tiles already in the folder are kept; they never change)."""
    from ..ledger.tiles import write_tiles

    with Ledger.open(log) as led:
        written = write_tiles(led, out)
        cp = led.latest_checkpoint()
    size = 0 if cp is None else cp.size
    console.print(f"wrote {written} resources to {out}: the tree of {size} entries at its latest signed checkpoint")


@ledger_app.command("verify-tiles")
def verify_tiles_cmd(
    source: Annotated[
        str,
        typer.Argument(
            help="A folder written by `ledger tiles`, or a server (http(s)://host:port: its /v1/ledger/tlog/ routes)."
        ),
    ],
    key: Annotated[Path, typer.Option("--key", "-k", help="The log's verifier key file (or its text).")],
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", help="A regulator's API key, for a server (default: $ROBOTAXI_API_KEY)."),
    ] = None,
) -> None:
    """Check a tiled log from its resources alone: the checkpoint's signature, every entry against its leaf hash,
    every tile against the tiles below it, and the tree's root against the signed one."""
    from ..ledger.tiles import verify_tiles

    vkey = VerifierKey.parse(str(key)) if not key.exists() and "+" in str(key) else VerifierKey.from_file(key)
    if source.startswith(("http://", "https://")):
        from ..client.http import PlatformClient

        secret = api_key or os.environ.get("ROBOTAXI_API_KEY")
        if not secret:
            raise typer.BadParameter("a server needs --api-key (or $ROBOTAXI_API_KEY): a regulator's key")
        with PlatformClient(source, secret) as client:
            report = verify_tiles(lambda p: client.get_bytes(f"/v1/ledger/tlog/{p}"), vkey)
    else:
        folder = Path(source)
        if not (folder / "checkpoint").is_file():
            raise LedgerError(f"{folder} holds no checkpoint file", hint="write the tiles with `robotaxi ledger tiles`")

        def read(path: str) -> bytes:
            try:
                return (folder / path).read_bytes()
            except OSError as e:
                raise VerificationError(f"{path}: cannot read {folder / path}: {e.strerror}") from e

        report = verify_tiles(read, vkey)
    console.print(
        f"OK: {report.size} entries in {report.tiles} tiles verify against the signed root {report.root.hex()[:16]}..."
    )


@ledger_app.command("consistency")
def consistency(
    old: Annotated[Path, typer.Argument(help="Older signed checkpoint file.")],
    new: Annotated[Path, typer.Argument(help="Newer signed checkpoint file.")],
    log: LogOpt = Path("ledger.db"),
    out: Annotated[Path | None, typer.Option(help="Write the consistency bundle here.")] = None,
) -> None:
    """Prove (and check) that the newer checkpoint's tree extends the older one's."""
    with Ledger.open(log) as led:
        vkey = led.verifier
        if vkey is None:
            raise LedgerError("the ledger has no key yet", hint="sign a checkpoint first")
        b = ConsistencyBundle.build(led, _read(old, "checkpoint"), _read(new, "checkpoint"))
    o, n = b.verify(vkey)
    console.print(f"OK: size {n.size} extends size {o.size} ({len(b.proof)} proof hashes)")
    if out is not None:
        _write_or_print(json.dumps(b.to_json(), indent=2) + "\n", out)


@ledger_app.command("audit")
def audit_cmd(
    path: Annotated[
        Path | None, typer.Argument(help="Ledger database file (or give it with -l/--log, like the other commands).")
    ] = None,
    log: Annotated[
        Path | None, typer.Option("--log", "-l", envvar="ROBOTAXI_LEDGER", help="Ledger database file (SQLite).")
    ] = None,
    key: Annotated[
        Path | None, typer.Option("--key", "-k", help="Verifier key to trust (default: the one in the ledger).")
    ] = None,
) -> None:
    """Recompute the whole tree from the entries; check every stored hash and every signed checkpoint."""
    # $ROBOTAXI_LEDGER is a default: a ledger named on the command line wins over it.
    from_env = log is not None and os.environ.get("ROBOTAXI_LEDGER") == str(log)
    if path is not None and log is not None and path != log and not from_env:
        raise LedgerError(f"two ledgers given: {path} and --log {log}", hint="give one")
    path = path or log or Path("ledger.db")
    vkey = VerifierKey.from_file(key) if key is not None else None
    report = audit(path, vkey)
    if report.ok:
        console.print(f"OK: {report.size} entries and {report.checkpoints_checked} checkpoints verify")
        return
    for p in report.problems[:20]:
        console.print(f"  {p}")
    first = report.first_bad_index
    where = f"first bad index {first}" if first is not None else "checkpoints do not verify"
    raise VerificationError(f"audit of {path} failed: {len(report.problems)} problem(s), {where}")
