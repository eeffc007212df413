"""The official MDS 2.0 schemas (``../shared/mds-openapi``), loaded with jsonschema + referencing.

Two documented defects of the files are worked around here, and only here (the files stay untouched):

* ``modes/passenger-services/event.yaml`` gives ``contains`` a *list* of event types (a schema is required), which
  jsonschema cannot even load; it is read as what it plainly means, ``contains: {enum: [...]}``: trip events must
  carry ``trip_ids``. This is stricter than the published file, never looser.
* ``event.yaml``, ``vehicle.yaml`` and ``trip.yaml`` require a record to match exactly one mode (``oneOf`` over
  car-share, delivery-robots, micromobility, passenger-services), but several passenger-services records (an
  ``available`` vehicle after ``service_start``, a vehicle with only the common fields) are also valid car-share or
  micromobility records, so no correct passenger-services feed can pass. MDS 2.0 tells the mode by the provider's
  registration, not the record; the mode ``oneOf`` is therefore pinned to its passenger-services branch.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ..conftest import shared_file


def _fix(node: Any) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("contains"), list):
            node["contains"] = {"enum": node["contains"]}
        one = node.get("oneOf")
        if isinstance(one, list):
            ps = [b for b in one if isinstance(b, dict) and "passenger-services" in str(b.get("$ref", ""))]
            if ps and len(one) == 4:
                node["oneOf"] = ps
        for v in node.values():
            _fix(v)
    elif isinstance(node, list):
        for v in node:
            _fix(v)


@functools.cache
def _registry(root: Path) -> Registry[Any]:
    def retrieve(uri: str) -> Resource[Any]:
        doc = yaml.safe_load(Path(uri.removeprefix("file://")).read_text(encoding="utf-8"))
        _fix(doc)
        return Resource.from_contents(doc, default_specification=DRAFT202012)

    return Registry(retrieve=retrieve)  # type: ignore[call-arg]


def models_dir() -> Path:
    return shared_file("mds-openapi/models")


def validator(model: str) -> Draft202012Validator:
    """A validator for ``models/<model>`` (e.g. ``vehicle.yaml``, ``response/error.yaml``)."""
    root = models_dir()
    return Draft202012Validator({"$ref": (root / model).as_uri()}, registry=_registry(root))


def response_validator(path: str, status: str = "200") -> Draft202012Validator:
    """A validator for the body provider.yaml documents for ``GET path`` answering ``status``."""
    ref = shared_file("mds-openapi/reference/provider.yaml")
    doc = yaml.safe_load(ref.read_text(encoding="utf-8"))
    schema = doc["paths"][path]["get"]["responses"][status]["content"]
    body = next(iter(schema.values()))["schema"]
    _fix(body)
    # Relative $refs in the document resolve against reference/: give the body an id there.
    return Draft202012Validator(
        {**body, "$id": (ref.parent / "_response.json").as_uri()}, registry=_registry(models_dir())
    )


def errors(v: Draft202012Validator, instance: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in v.iter_errors(instance)]
