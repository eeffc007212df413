"""Sweep files: a base scenario and each run's overrides, validated completely before anything runs.

A sweep file names a base scenario and says what changes from one run to the next::

    name = "fleet_sizing"                 # default: the file's name
    scenario = "manhattan_weekday.toml"   # the base: a scenario file (relative to this one), or an inline table
    output = "out/fleet_sizing"           # default: out/<name>, relative to the working directory
    workers = 2                           # parallel runs (default: one per CPU)
    run_reports = true                    # each run's report.html (its plots take a few seconds)

    [set]                                 # overrides for every run
    "time.end" = "10:00"

    [grid]                                # every combination of these values
    "fleet.vehicles" = [4000, 5000]
    "dispatch.policy" = ["batch", "immediate"]
    seed = [2018, 2019]

    [[runs]]                              # and/or listed runs (each combined with every grid point)
    "dispatch.max_wait_s" = 300

An override is a dotted path into the scenario *document* (the TOML as parsed, before the scenario parser sees it)
and a value: ``fleet.vehicles``, ``dispatch.policy``, ``seed``, ``operators.0.vehicles`` (an integer picks an
element of an array of tables). Unquoted dotted keys (``fleet.vehicles = [...]``) mean the same as quoted ones. Every
run's document is then checked by :meth:`robotaxi.sim.Scenario.from_mapping`, so an unknown key or a wrong type is
reported with the key's name before the first run starts, whatever the scenario format grows into.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RobotaxiError, ScenarioError
from ..sim import Scenario
from ..sim.scenario import resolve_input

__all__ = ["RunSpec", "SweepSpec", "apply_override", "dump_toml"]

_KEYS = ("name", "scenario", "output", "workers", "run_reports", "set", "grid", "runs")
#: Keys a sweep decides for every run: overriding them would make runs overwrite each other.
_RESERVED = ("output",)
Override = tuple[str, Any]


@dataclass(frozen=True, slots=True)
class RunSpec:
    """One run of a sweep.

    Parameters
    ----------
    index : int
        Position in the sweep (0-based).
    name : str
        Its folder's name under ``runs/``: the index and the varied values (``003_vehicles=5000_seed=2``).
    overrides : tuple of (path, value)
        Every override applied to the base document ([set], then the run's own), in that order.
    document : dict
        The scenario document after the overrides (never modified).
    scenario : Scenario
        The validated scenario.
    key : str
        A digest of the document and its base folder: a finished run is skipped on resume only if its key matches.
    """

    index: int
    name: str
    overrides: tuple[Override, ...]
    document: Mapping[str, Any] = field(repr=False, compare=False)
    scenario: Scenario = field(repr=False, compare=False)
    key: str = ""


@dataclass(frozen=True, slots=True)
class SweepSpec:
    """A validated sweep file.

    Parameters
    ----------
    name : str
    source : Path or None
        The sweep file.
    text : str
        Its text (copied into the output folder).
    base_source : Path or None
        The base scenario file (None for an inline table).
    base_dir : Path
        Folder the base scenario's relative input paths are looked up from.
    output : Path
        Output folder of the sweep.
    workers : int or None
        Parallel runs; None: one per CPU.
    run_reports : bool
        Whether each run writes its ``report.html``.
    varied : tuple of str
        Paths whose value differs between runs (the grid's and the listed runs' keys), in file order.
    runs : tuple of RunSpec
    """

    name: str
    source: Path | None
    text: str = field(repr=False)
    base_source: Path | None
    base_dir: Path
    output: Path
    workers: int | None
    run_reports: bool
    varied: tuple[str, ...]
    runs: tuple[RunSpec, ...]

    @classmethod
    def from_file(cls, path: str | Path) -> SweepSpec:
        """Read and validate a sweep file and every run it describes.

        Raises
        ------
        ScenarioError
            If the file or any run is invalid; the message names the key (and the run).
        """
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError as e:
            raise ScenarioError(f"sweep file not found: {p}") from e
        except (OSError, UnicodeDecodeError) as e:
            raise ScenarioError(f"cannot read sweep file {p}: {e}") from e
        return cls.from_toml(text, source=p)

    @classmethod
    def from_toml(cls, text: str, *, source: Path | None = None, base_dir: Path | None = None) -> SweepSpec:
        """Parse a sweep from its TOML text (``base_dir``: where relative paths start; default the file's folder)."""
        where = str(source) if source else "sweep"
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ScenarioError(f"{where}: not valid TOML: {e}") from e
        folder = base_dir or (source.resolve().parent if source else Path.cwd())
        try:
            return _parse(doc, text, source, folder, where)
        except ValueError as e:
            raise ScenarioError(f"{where}: {e}") from e


def _parse(doc: Mapping[str, Any], text: str, source: Path | None, folder: Path, where: str) -> SweepSpec:
    unknown = [k for k in doc if k not in _KEYS]
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown key (known keys: {', '.join(_KEYS)})")
    name = doc.get("name", source.stem if source else "sweep")
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: expected a non-empty string, got {name!r}")
    output = doc.get("output", f"out/{name}")
    if not isinstance(output, str) or not output:
        raise ValueError(f"output: expected a folder name, got {output!r}")
    workers = doc.get("workers")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers: expected an integer >= 1, got {workers!r}")
    run_reports = doc.get("run_reports", True)
    if not isinstance(run_reports, bool):
        raise ValueError(f"run_reports: expected true or false, got {run_reports!r}")
    base, base_source, base_dir = _base(doc, folder)
    fixed = _overrides(doc.get("set", {}), "set")
    grid = _grid(doc.get("grid", {}))
    listed = _listed(doc.get("runs", []))
    for path in fixed:
        for other, table in (("grid", grid), ("runs", {k: 0 for e in listed for k in e})):
            if path in table:
                raise ValueError(f"{path}: given in [set] and in [{other}]; say it once")
    varied = tuple(dict.fromkeys([*(k for e in listed for k in e), *grid]))
    runs = _expand(base, base_dir, base_source, fixed, grid, listed, where)
    return SweepSpec(
        name=name,
        source=source,
        text=text,
        base_source=base_source,
        base_dir=base_dir,
        output=Path(output),
        workers=workers,
        run_reports=run_reports,
        varied=varied,
        runs=runs,
    )


def _base(doc: Mapping[str, Any], folder: Path) -> tuple[dict[str, Any], Path | None, Path]:
    """The base scenario document, its file (if any) and the folder its relative paths start from."""
    value = doc.get("scenario")
    if value is None:
        raise ValueError("scenario: missing (a scenario file, or an inline [scenario] table)")
    if isinstance(value, Mapping):
        return copy.deepcopy(dict(value)), None, folder
    if not isinstance(value, str):
        raise ValueError(f"scenario: expected a file name or a table, got {value!r}")
    path = resolve_input(value, folder, "scenario")
    try:
        base = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"scenario: cannot read {path}: {e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"scenario: {path} is not valid TOML: {e}") from e
    return base, path, path.resolve().parent


def _flatten(table: Mapping[str, Any], prefix: str, where: str, out: dict[str, Any]) -> None:
    for key, value in table.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            _flatten(value, path, where, out)
            continue
        if any(not part.strip() for part in path.split(".")):
            raise ValueError(f"{where}: {path!r} is not a dotted path (an empty part)")
        if path in out:
            raise ValueError(f"{where}.{path}: given twice (as a dotted key and as a table)")
        out[path] = value


def _overrides(table: Any, where: str) -> dict[str, Any]:
    """A table of overrides, flattened to dotted paths."""
    if not isinstance(table, Mapping):
        raise ValueError(f"{where}: expected a table of dotted keys, got {table!r}")
    out: dict[str, Any] = {}
    _flatten(table, "", where, out)
    for path in out:
        if path in _RESERVED:
            raise ValueError(f"{where}.{path}: set by the sweep (each run writes into its own folder)")
    return out


def _grid(table: Any) -> dict[str, list[Any]]:
    flat = _overrides(table, "grid")
    for path, values in flat.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"grid.{path}: expected a non-empty array of values, got {values!r}")
        seen: list[Any] = []
        for v in values:
            if _same_in(v, seen):
                raise ValueError(f"grid.{path}: the value {v!r} is listed twice")
            seen.append(v)
    return flat


def _listed(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(e, Mapping) for e in value):
        raise ValueError("runs: expected an array of tables ([[runs]])")
    return [_overrides(e, f"runs[{i}]") for i, e in enumerate(value)]


def _same_in(value: Any, seen: Sequence[Any]) -> bool:
    """``value`` in ``seen`` with types compared too (``1 == True`` and ``1 == 1.0`` in Python, not here)."""
    return any(type(v) is type(value) and v == value for v in seen)


def _expand(
    base: dict[str, Any],
    base_dir: Path,
    base_source: Path | None,
    fixed: dict[str, Any],
    grid: dict[str, list[Any]],
    listed: list[dict[str, Any]],
    where: str,
) -> tuple[RunSpec, ...]:
    points = [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]
    combos: list[dict[str, Any]] = []
    for i, entry in enumerate(listed or [{}]):
        for point in points:
            both = sorted(set(entry) & set(point))
            if both:
                raise ValueError(f"{both[0]}: given in [grid] and in [[runs]] entry {i}; say it once")
            combos.append({**entry, **point})
    width = max(3, len(str(len(combos) - 1)))
    runs: list[RunSpec] = []
    errors: list[str] = []
    seen_keys: dict[str, int] = {}
    for index, own in enumerate(combos):
        overrides = (*fixed.items(), *own.items())
        name = f"{index:0{width}d}" + "".join(f"_{_slug(p, v)}" for p, v in own.items())
        name = name[:100]
        try:
            document = copy.deepcopy(base)
            for path, value in overrides:
                apply_override(document, path, value)
            scenario = Scenario.from_mapping(document, base_dir=base_dir, source=base_source, where="scenario")
        except (ValueError, RobotaxiError) as e:
            errors.append(f"run {name}: {e}")
            continue
        key = _digest(document, base_dir)
        if key in seen_keys:
            raise ValueError(f"runs {seen_keys[key]} and {index} are the same scenario ({name}); drop one")
        seen_keys[key] = index
        runs.append(RunSpec(index, name, tuple(overrides), document, scenario, key))
    if errors:
        more = f" (and {len(errors) - 1} more runs with errors)" if len(errors) > 1 else ""
        raise ValueError(errors[0] + more)
    return tuple(runs)


def short_name(path: str) -> str:
    """A path's last key, with the array element it is in (``fleet.vehicles`` -> ``vehicles``,
    ``operators.1.vehicles`` -> ``operators1.vehicles``)."""
    parts = path.split(".")
    index = max((i for i, p in enumerate(parts) if p.isdigit() and i > 0), default=None)
    if index is None:
        return parts[-1]
    return ".".join([parts[index - 1] + parts[index], *parts[index + 1 :]])


def _slug(path: str, value: Any) -> str:
    leaf = short_name(path)
    text = json.dumps(value) if not isinstance(value, str) else value
    return re.sub(r"[^A-Za-z0-9.+=-]+", "-", f"{leaf}={text}").strip("-")


def _digest(document: Mapping[str, Any], base_dir: Path) -> str:
    canon = json.dumps([str(base_dir), document], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:16]


def apply_override(document: dict[str, Any], path: str, value: Any) -> None:
    """Set ``path`` (dotted; an integer part indexes an array) in ``document`` to ``value``, in place.

    Missing tables on the way are created (the scenario parser then says whether the key exists).

    Raises
    ------
    ValueError
        Naming the path, if it runs through a value or past the end of an array.
    """
    parts = path.split(".")
    node: Any = document
    for depth, part in enumerate(parts):
        here = ".".join(parts[: depth + 1])
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ValueError(f"{path}: {here!r} needs an index 0..{len(node) - 1} into the array")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            above = ".".join(parts[:depth])
            raise ValueError(f"{path}: {above} is a value ({node!r}), not a table")


_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE.match(k) else json.dumps(k, ensure_ascii=False)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if v in (float("inf"), float("-inf")):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        # A JSON string without ASCII escaping is a valid TOML basic string (JSON escapes control characters).
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    if hasattr(v, "isoformat"):  # TOML dates, times and datetimes
        return str(v.isoformat())
    raise TypeError(f"cannot write {type(v).__name__} {v!r} as TOML")


def dump_toml(document: Mapping[str, Any], header: str = "") -> str:
    """``document`` (as :func:`tomllib.loads` returns it) as TOML text that parses back to the same document."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    _dump_table(document, (), lines)
    return "\n".join(lines).strip("\n") + "\n"


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, Mapping) for x in v)


def _dump_table(table: Mapping[str, Any], prefix: tuple[str, ...], lines: list[str]) -> None:
    for k, v in table.items():
        if not isinstance(v, Mapping) and not _is_table_array(v):
            lines.append(f"{_key(k)} = {_value(v)}")
    for k, v in table.items():
        path = (*prefix, k)
        if isinstance(v, Mapping):
            lines.extend(("", "[" + ".".join(_key(p) for p in path) + "]"))
            _dump_table(v, path, lines)
        elif _is_table_array(v):
            for item in v:
                lines.extend(("", "[[" + ".".join(_key(p) for p in path) + "]]"))
                _dump_table(item, path, lines)


def default_workers(n_runs: int, workers: int | None) -> int:
    """Parallel runs: ``workers`` if given, else one per CPU; never more than there are runs."""
    return max(1, min(n_runs, workers or os.cpu_count() or 1))
