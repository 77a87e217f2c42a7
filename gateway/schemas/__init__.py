"""The schema registry: JSON Schemas for event `data`, loaded offline, compiled once.

Rules (the user-facing contract, "Schemas"):

- Drafts: 2020-12 by default; 2019-09 and draft-07 when `$schema` says so. Anything else in
  `$schema` is a load problem. Every schema is checked against its meta-schema at load.
- Files: `.json`, `.yaml` or `.yml`, anywhere under the schemas folder.
- Which type a file governs: the file name without its extension
  (`schemas/shop/com.example.order.created.json` governs `com.example.order.created`). Files in a
  folder named `common`, or with a folder or file name starting with `_`, are definitions only:
  they are there to be `$ref`erenced (and can still be chosen through `dataschema`). Two files
  for one type is a load problem.
- `dataschema`: an event whose `dataschema` equals a schema's `$id` (an empty trailing `#` is
  ignored on both sides) is validated against that schema; when it names no known `$id`, the
  schema of the event's type applies.
- `$ref`: resolved offline against the `$id` in scope, or the file's location when it has no
  `$id`; a reference that names nothing that way but names a file relative to the referring
  file's location uses that file. Absolute references find files by `$id`. A reference to
  anything else is a load problem: schemas are never fetched.
- `format` is asserted (date-time, email, uri, uuid, ...) in every draft; unknown formats pass.
- Only JSON data can match a schema: a governed event without data, or with text or binary data,
  fails at pointer "".
- Violations carry RFC 6901 pointers into `data`, sorted by location; at most `MAX_VIOLATIONS`
  are listed (`truncated` says when there were more), and data over `FULL_LISTING_BYTES` is
  checked up to its first violation only: the work spent on invalid data stays bounded.
"""

from __future__ import annotations

from gateway.schemas.registry import (
    FULL_LISTING_BYTES,
    MAX_VIOLATIONS,
    UNKNOWN_TYPES,
    SchemaRegistry,
    Verdict,
)

__all__ = ["FULL_LISTING_BYTES", "MAX_VIOLATIONS", "UNKNOWN_TYPES", "SchemaRegistry", "Verdict"]
