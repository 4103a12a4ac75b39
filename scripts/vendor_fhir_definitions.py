"""Extract the FHIR R4 definitions the reference implementation uses into the repo.

Reads the official npm package ``hl7.fhir.r4.examples`` 4.0.1 (``npm pack`` it, or pass the
directory of an unpacked copy) and writes three compact JSON files to
``reference_impl/fhir/definitions/``:

* ``search-parameters.json`` - every SearchParameter (trimmed to the fields the server reads);
* ``structure.json`` - element paths, types, cardinality and summary flags of every resource and
  data type, and which resource types the server serves;
* ``required-bindings.json`` - the codes allowed for each ``code`` element with a required binding;
* ``compartments.json`` - the Patient compartment: for each resource type, the search parameters
  that place a resource in a patient's compartment.

The server is R4; its structural validation uses ``fhir.resources`` R4B models. A resource type is
served only when its R4B model has exactly the R4 elements (R4B changed or dropped a few), so the
CapabilityStatement never claims a type that validation would get wrong.

Run: ``python scripts/vendor_fhir_definitions.py [PACKAGE_DIR]`` (default: fetches the package
with ``npm pack`` into a temporary directory). The output is committed; nothing is fetched at run
time.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

PACKAGE = "hl7.fhir.r4.examples@4.0.1"
OUT = Path(__file__).resolve().parent.parent / "reference_impl" / "fhir" / "definitions"
SKIP_ELEMENTS = {"id", "extension", "modifierExtension"}


def package_dir(argv: list[str]) -> Path:
    if len(argv) > 1:
        return Path(argv[1])
    tmp = Path(tempfile.mkdtemp(prefix="fhir-r4-"))
    subprocess.run(["npm", "pack", PACKAGE, "--pack-destination", str(tmp)], check=True)
    (tarball,) = tmp.glob("*.tgz")
    with tarfile.open(tarball) as tar:
        tar.extractall(tmp, filter="data")
    return tmp / "package"


def load_all(pkg: Path, prefix: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(pkg.glob(f"{prefix}-*.json"))]


def search_parameters(pkg: Path) -> list[dict[str, Any]]:
    bundle = json.loads((pkg / "Bundle-searchParams.json").read_text(encoding="utf-8"))
    keep = ("id", "url", "code", "base", "type", "expression", "target", "modifier", "comparator")
    out = []
    for entry in bundle["entry"]:
        res = entry["resource"]
        item = {k: res[k] for k in keep if k in res}
        item["description"] = (res.get("description") or "").split("\r\n")[0][:200]
        out.append(item)
    return out


def structure(pkg: Path) -> dict[str, Any]:
    types: dict[str, Any] = {}
    for sd in load_all(pkg, "StructureDefinition"):
        if sd.get("derivation") == "constraint" or sd["kind"] == "logical":
            continue
        elements: dict[str, Any] = {}
        for el in sd["snapshot"]["element"]:
            path = el["path"]
            if "." not in path:
                continue
            rel = path.split(".", 1)[1]
            info: dict[str, Any] = {"max": el.get("max", "1")}
            if el.get("min"):
                info["min"] = el["min"]
            if el.get("isSummary"):
                info["summary"] = True
            if el.get("contentReference"):
                info["ref"] = el["contentReference"].lstrip("#").split(".", 1)[1]
            else:
                info["types"] = [_type_code(t) for t in el.get("type", [])]
            elements[rel] = info
        types[sd["type"]] = {"kind": sd["kind"], "abstract": sd.get("abstract", False), "elements": elements}
    served = sorted(
        name
        for name, t in types.items()
        if t["kind"] == "resource" and not t["abstract"] and _r4b_model_matches(name, t["elements"])
    )
    return {"fhirVersion": "4.0.1", "served": served, "types": types}


def _type_code(t: dict[str, Any]) -> str:
    code: str = t["code"]
    # FHIRPath system types appear on id/extension url elements; they behave as strings.
    return "string" if code.startswith("http://hl7.org/fhirpath/") else code


def _r4b_model_matches(type_name: str, elements: dict[str, Any]) -> bool:
    try:
        get_fhir_model_class(type_name)
    except (KeyError, ValueError):
        return False
    module = importlib.import_module(f"fhir.resources.R4B.{type_name.lower()}")
    for rel, info in elements.items():
        parts = rel.split(".")
        owner = type_name + "".join(p[0].upper() + p[1:] for p in parts[:-1])
        cls = getattr(module, owner, None)
        if cls is None:
            return False
        name = parts[-1]
        if name in SKIP_ELEMENTS:
            continue
        names = cls.elements_sequence()
        if name.endswith("[x]"):
            stem = name[:-3]
            wanted = {stem + t[0].upper() + t[1:] for t in info.get("types", [])}
            if not wanted <= set(names):
                return False
        elif name not in names:
            return False
    return True


def required_bindings(pkg: Path, struct: dict[str, Any]) -> dict[str, list[str]]:
    code_systems = {cs["url"]: cs for cs in load_all(pkg, "CodeSystem")}
    value_sets = {vs["url"]: vs for vs in load_all(pkg, "ValueSet")}
    out: dict[str, list[str]] = {}
    for sd in load_all(pkg, "StructureDefinition"):
        if sd.get("derivation") == "constraint" or sd["type"] not in struct["types"]:
            continue
        for el in sd["snapshot"]["element"]:
            binding = el.get("binding") or {}
            if binding.get("strength") != "required" or [t["code"] for t in el.get("type", [])] != ["code"]:
                continue
            codes = _expand(binding.get("valueSet", "").split("|")[0], value_sets, code_systems)
            if codes:
                out[el["path"]] = sorted(codes)
    return dict(sorted(out.items()))


def _expand(url: str, value_sets: dict[str, Any], code_systems: dict[str, Any]) -> set[str] | None:
    """All codes of a value set built only from whole or enumerated code systems, else None."""
    vs = value_sets.get(url)
    if vs is None or "exclude" in vs.get("compose", {}):
        return None
    codes: set[str] = set()
    for inc in vs.get("compose", {}).get("include", []):
        if inc.get("filter") or inc.get("valueSet"):
            return None
        if inc.get("concept"):
            codes.update(c["code"] for c in inc["concept"])
            continue
        cs = code_systems.get(inc.get("system", ""))
        if cs is None or cs.get("content") != "complete":
            return None
        codes.update(_concept_codes(cs.get("concept", [])))
    return codes


def _concept_codes(concepts: list[dict[str, Any]]) -> set[str]:
    codes: set[str] = set()
    for c in concepts:
        codes.add(c["code"])
        codes |= _concept_codes(c.get("concept", []))
    return codes


def compartments(pkg: Path) -> dict[str, dict[str, list[str]]]:
    definition = json.loads((pkg / "CompartmentDefinition-patient.json").read_text(encoding="utf-8"))
    members = {r["code"]: r["param"] for r in definition["resource"] if r.get("param")}
    return {"Patient": dict(sorted(members.items()))}


def write(name: str, data: Any) -> None:
    path = OUT / name
    path.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=False) + "\n")
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


def main() -> None:
    pkg = package_dir(sys.argv)
    OUT.mkdir(parents=True, exist_ok=True)
    struct = structure(pkg)
    write("search-parameters.json", search_parameters(pkg))
    write("structure.json", struct)
    write("required-bindings.json", required_bindings(pkg, struct))
    write("compartments.json", compartments(pkg))
    print(f"served resource types: {len(struct['served'])}")


if __name__ == "__main__":
    main()
