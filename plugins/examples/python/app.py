"""The `raw` renderer's JSON half, written in Python to prove the renderer world is language-neutral.

It passes the same conformance cases as the Rust `raw` renderer (host/plugin-host/tests/conformance):
the files of the source tree matching the `glob` setting, read as JSON Kubernetes objects (a `kind: List`
is expanded), in path order, hidden files and directories skipped; bad input is an `invalid-input` error
with file and line. YAML needs a parser the standard library lacks, so a YAML file is reported as
unsupported rather than guessed at.

Built by host/plugin-host/build.rs with `componentize-py -d wit -w renderer componentize app`.
"""

import json
import os
import re

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import render
from wit_world.imports import log
from wit_world.imports.types import (
    Diagnostic,
    Error_InvalidInput,
    Error_InvalidSettings,
    Location,
    Object,
)

DEFAULT_GLOB = "**/*.{yaml,yml,json}"
KNOWN_SETTINGS = ("glob",)


def invalid_input(message, path, line=None):
    return Err(Error_InvalidInput(Diagnostic(message, Location(path, line, None))))


def glob_to_regex(glob):
    """`**` spans directories, `*` and `?` stay within one, `{a,b}` is a choice (the SDK's glob rules)."""
    out, i = [], 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        elif glob[i] == "{":
            end = glob.index("}", i)
            out.append("(?:" + "|".join(re.escape(p) for p in glob[i + 1 : end].split(",")) + ")")
            i = end + 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def source_files(root, pattern):
    found = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.startswith("."):
                continue
            relative = os.path.relpath(os.path.join(directory, name), root).replace(os.sep, "/")
            if pattern.match(relative):
                found.append(relative)
    return sorted(found)


def expand(path, value, objects):
    if not isinstance(value, dict):
        raise invalid_input("expected a Kubernetes object (a mapping)", path, 1)
    kind = value.get("kind")
    if not isinstance(kind, str) or not kind:
        raise invalid_input("object has no `kind`", path, 1)
    api_version = value.get("apiVersion")
    if not isinstance(api_version, str) or not api_version:
        raise invalid_input(f"{kind} has no `apiVersion`", path, 1)
    if kind == "List":
        items = value.get("items")
        if not isinstance(items, list):
            raise invalid_input("List has no `items` array", path, 1)
        for item in items:
            expand(path, item, objects)
        return
    metadata = value.get("metadata")
    name = None
    if isinstance(metadata, dict):
        name = metadata.get("name") or metadata.get("generateName")
    if not isinstance(name, str) or not name:
        raise invalid_input(f"{kind} has no `metadata.name`", path, 1)
    manifest = json.dumps(value, sort_keys=True, separators=(",", ":"))
    objects.append(Object(manifest, Location(path, 1, None)))


class Render(exports.Render):
    def render(self, settings, context):
        for key, _ in settings:
            if key not in KNOWN_SETTINGS:
                raise Err(Error_InvalidSettings(Diagnostic(
                    f"unknown setting `{key}` (known: {', '.join(KNOWN_SETTINGS)})", None)))
        glob = dict(settings).get("glob", DEFAULT_GLOB)
        objects = []
        for path in source_files(context.source_dir, glob_to_regex(glob)):
            if not path.endswith(".json"):
                raise invalid_input("YAML is not supported by the Python renderer; use `raw`", path)
            try:
                with open(os.path.join(context.source_dir, path), encoding="utf-8") as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError) as e:
                raise invalid_input(f"cannot read: {e}", path)
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as e:
                raise invalid_input(f"invalid JSON: {e.msg}", path, e.lineno)
            expand(path, value, objects)
        log.log(log.Level.DEBUG, f"rendered {len(objects)} objects")
        return render.Output(objects, [])
