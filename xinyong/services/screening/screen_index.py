"""Screening's index of the store as a file of arrays, mapped into memory at start.

At national scale the in-memory index of earlier versions (a dict per code, an object per
entity, the name analyser's parts and blocking lists as Python objects) took minutes to build
and gigabytes to hold. Here the same content is written once into a folder of flat arrays
(`store_folder(engine, "screen-index", "XINYONG_SCREEN_INDEX_DIR")`) and mapped read-only at
start: a restart is ready in seconds and resident memory grows with the pages a query touches.

What the file holds, per entity row (entities in id order):
- its key, current name and kind; the codes that answer for it (its key and its verified
  identifiers) in an open-addressing hash table (crc32, linear probing, every hit checked
  against the stored string); a natural person's ID number;
- with names: every name's parts as the pack's `NameAnalyser` made them (so a query never
  re-parses a candidate's names), its non-person codes, legal representative and address, the
  name blocks (`resolve.name_blocks`: bigrams, sound bigrams, abbreviation and substitution keys
  of each name, entity ids in id order, as `EntityIndex` builds them) and the exact-name keys.

`CompactEntityIndex` is an `EntityIndex` whose `profiles`, `by_block` and `by_name_key` read
the file, so `candidates`, `exact` and `rank` are the resolution stage's own code and the
scores are `Matcher.score`'s: screening by name ranks exactly as before. Entities added or
changed after the file was written live in small in-memory overlays (`add`), as they did.
Code (`c`) and legal-representative (`r`) blocks are not in the file: a screened name has
neither (resolution builds its own `EntityIndex`).

The file is stamped with the `changes` sequence it was built at, the pack's name rules and
the format. At open, a stamp that does not fit the store (another store, an older format,
other name rules, a sequence the store never reached, or more than 5% of the entities changed
since) means the file is rebuilt; otherwise the entities changed since the stamp are read from
the store into the overlays. A running server does not rebuild: what changes while it runs
stays in the overlays until the next start.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import mmap
import os
import shutil
import tempfile
import zlib
from array import array
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Connection

from xinyong.domain.matching import Matcher, NameAnalyser, NameParts, Profile, bigrams
from xinyong.services.resolution.resolve import PERSON_SCHEMES, EntityIndex, load_model, name_blocks
from xinyong.store import tables as t
from xinyong.store.db import private_folder, store_folder

FORMAT = "xinyong-screen-index-6"  # 2: abbreviation (a) blocks; 3: each slot's crc32 beside its entry;
# 4: names folded without every punctuation mark and invisible character (names.normalise_name);
# 5: digits in names as Chinese numerals (matching.chinese_numerals); 6: substitution (d) blocks
INDEX_DIR_ENV = "XINYONG_SCREEN_INDEX_DIR"
CURRENT = "CURRENT"
CHUNK = 50_000  # entity ids read per query while building
SEP = "\x1f"  # between the fields of a name's parts
KINDS_MAX = 255
# a file this far behind the store (entities changed since its stamp) is rebuilt at start, not caught up
REBUILD_AFTER, REBUILD_SHARE = 20_000, 0.05


def change_seq(c: Connection) -> int:
    """The store's change counter: the highest `changes.seq` (commit-ordered, see migration 0015)."""
    return int(c.execute(select(func.coalesce(func.max(t.changes.c.seq), 0))).scalar_one())


def changed_since(c: Connection, seq: int) -> tuple[int, set[int]]:
    """(the newest seq read, entities changed after `seq`)."""
    C = t.changes.c
    newest, entities = seq, set()
    for s, kind, ref in c.execute(select(C.seq, C.kind, C.ref_id).where(C.seq > seq).order_by(C.seq)):
        newest = max(newest, int(s))
        if kind == "entity" and ref is not None:
            entities.add(int(ref))
    return newest, entities


def rules_hash(analyser_rules: Any) -> str:
    data = analyser_rules.model_dump_json() if hasattr(analyser_rules, "model_dump_json") else json.dumps(analyser_rules)
    return hashlib.sha256(f"{FORMAT}\n{data}".encode()).hexdigest()[:32]


# -- flat columns ----------------------------------------------------------------------------------

def _map_blob(path: Path) -> bytes | mmap.mmap:
    if path.stat().st_size == 0:
        return b""
    with path.open("rb") as handle:
        return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)


def _ints(array_: np.ndarray) -> memoryview:
    """A memoryview over an integer array: indexing it gives Python ints, several times faster than numpy scalars."""
    return memoryview(np.ascontiguousarray(np.asarray(array_)))


class Strings:
    """A column of strings: int64 offsets into a UTF-8 blob (both mapped from files)."""

    def __init__(self, offsets: np.ndarray, blob: bytes | mmap.mmap):
        self.offsets, self.blob = offsets, blob
        self._at = _ints(offsets)
        self._blob_array: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def raw(self, i: int) -> bytes:
        at = self._at
        return self.blob[at[i]:at[i + 1]]

    def __getitem__(self, i: int) -> str:
        return self.raw(i).decode("utf-8")

    def many(self, rows: np.ndarray) -> list[str]:
        """The strings at `rows` (an int array): their offsets read as arrays, each string cut from
        the blob and decoded (faster than gathering the bytes as one array and cutting the decoded
        text at counted characters, which this did before)."""
        at = np.asarray(self.offsets)
        blob = self.blob
        return [blob[begin:end].decode() for begin, end in zip(at[rows].tolist(), at[rows + 1].tolist())]

    def equal(self, rows: np.ndarray, values: list[bytes]) -> np.ndarray:
        """Whether the string at each of `rows` is `values`' (UTF-8) at the same position, compared
        as arrays of bytes: the pairs of the most frequent length (codes of one scheme) at once, a
        slice each for the others."""
        at = np.asarray(self.offsets)
        begins = at[rows]
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
        equal = at[rows + 1] - begins == lengths
        if not equal.any():
            return equal
        common = int(np.bincount(lengths[equal]).argmax())
        alike = equal & (lengths == common)
        if common:
            picked = np.flatnonzero(alike)
            # every run of `common` bytes in the blob as a row of a view (nothing copied): one index per string
            stored = sliding_window_view(self._bytes(), common)[begins[picked]]
            given = np.frombuffer(b"".join(map(values.__getitem__, picked.tolist())), dtype=np.uint8)
            equal[picked] = (stored == given.reshape(len(picked), common)).all(axis=1)
        blob = self.blob
        for k in np.flatnonzero(equal & ~alike).tolist():
            begin = int(begins[k])
            equal[k] = blob[begin:begin + int(lengths[k])] == values[k]
        return equal

    def _bytes(self) -> np.ndarray:
        """The blob as an array of bytes (a view of the mapping, nothing copied)."""
        if self._blob_array is None:
            self._blob_array = np.frombuffer(self.blob, dtype=np.uint8) if len(self.blob) else np.zeros(0, np.uint8)
        return self._blob_array


class _StringsWriter:
    def __init__(self) -> None:
        self.offsets = array("q", [0])
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, value: str | None) -> None:
        data = (value or "").encode("utf-8")
        self.parts.append(data)
        self.size += len(data)
        self.offsets.append(self.size)

    def save(self, folder: Path, name: str) -> None:
        np.save(folder / f"{name}.off.npy", np.frombuffer(self.offsets, dtype=np.int64))
        with (folder / f"{name}.bin").open("wb") as handle:
            handle.write(b"".join(self.parts))


def _open_strings(folder: Path, name: str) -> Strings:
    return Strings(np.load(folder / f"{name}.off.npy", mmap_mode="r"), _map_blob(folder / f"{name}.bin"))


# slots read at once per key by `first_many`: at a load of at most 1/2, nearly every probe ends within them
PROBE_WINDOW = 8
ENTRY_BITS = 31  # a slot holds its key's crc32 above its entry (the key's number): one int64, -1 when empty
ENTRY_MASK = (1 << ENTRY_BITS) - 1


class HashedStrings:
    """Distinct strings, each with a run of int64 values; found by crc32 in an open-addressing table
    whose slots hold each key's crc32 beside its number, so that a probe compares stored strings
    only where the hash is the same, and reads one array to do so."""

    def __init__(self, table: np.ndarray, keys: Strings, offsets: np.ndarray, values: np.ndarray):
        self.table, self.keys, self.offsets, self.values = table, keys, offsets, values
        self.mask = len(table) - 1
        self.one_value = len(values) == len(keys)  # each key's run is one value: the key's number is its place
        self._table, self._offsets, self._values = _ints(table), _ints(offsets), _ints(values)

    def find(self, key: str) -> int:
        return self._find(key.encode("utf-8"))

    def _find(self, data: bytes) -> int:
        mask = self.mask
        hashed = zlib.crc32(data)
        slot = hashed & mask
        table, at, blob = self._table, self.keys._at, self.keys.blob
        while True:
            held = table[slot]
            if held < 0:
                return -1
            if held >> ENTRY_BITS == hashed:
                entry = held & ENTRY_MASK
                if blob[at[entry]:at[entry + 1]] == data:
                    return entry
            slot = (slot + 1) & mask

    def get(self, key: str) -> memoryview | None:
        """The values of `key` (a memoryview: `len` and iteration give Python ints, nothing copied)."""
        entry = self.find(key)
        if entry < 0:
            return None
        return self._values[self._offsets[entry]:self._offsets[entry + 1]]

    def first(self, key: str, default: Any = None) -> Any:
        """The first value of `key`, `default` when absent."""
        entry = self.find(key)
        return default if entry < 0 else self._values[self._offsets[entry]]

    def first_many(self, keys: list[bytes]) -> np.ndarray:
        """`first` of many keys (UTF-8) at once, -1 for an absent one. The first `PROBE_WINDOW`
        slots of every key's probe are read as one array; its probe ends at the first empty slot
        (absent) or slot with the same hash, whose stored string is then compared. The few keys
        left (a probe longer than the window, or the same hash for another string) are probed one
        by one. A batch's cost per key is a crc32, a few array elements and one comparison of
        strings: no Python call per probe."""
        n = len(keys)
        out = np.full(n, -1, dtype=np.int64)
        if not n or not len(self.keys):
            return out
        hashes = np.fromiter(map(zlib.crc32, keys), dtype=np.int64, count=n)
        window = ((hashes & self.mask)[:, None] + np.arange(PROBE_WINDOW)) & self.mask
        held = np.asarray(self.table)[window]
        ends = (held < 0) | (held >> ENTRY_BITS == hashes[:, None])
        position = ends.argmax(axis=1)
        rows = np.arange(n)
        ended, held = ends[rows, position], held[rows, position]
        compared = np.flatnonzero(ended & (held >= 0))
        entry = held[compared] & ENTRY_MASK
        equal = self._same_strings(entry, keys, compared)
        entry = entry[equal]
        out[compared[equal]] = np.asarray(self.values)[entry if self.one_value else np.asarray(self.offsets)[entry]]
        unsettled = ~ended
        unsettled[compared[~equal]] = True
        for row in np.flatnonzero(unsettled).tolist():
            found = self._find(keys[row])
            if found >= 0:
                out[row] = self._values[self._offsets[found]]
        return out

    def _same_strings(self, entries: np.ndarray, keys: list[bytes], asked: np.ndarray) -> np.ndarray:
        """Whether each stored key `entries[k]` is `keys[asked[k]]`, compared as arrays (`Strings.equal`)."""
        return self.keys.equal(entries, list(map(keys.__getitem__, asked.tolist())))


def _save_hashed(folder: Path, name: str, groups: dict[str, Iterable[int]]) -> None:
    if len(groups) > ENTRY_MASK:
        raise ValueError(f"too many keys for the screening index's {name} table")
    keys = _StringsWriter()
    offsets = array("q", [0])
    values = array("q")
    size = 1
    while size < 2 * max(1, len(groups)):
        size *= 2
    table = np.full(size, -1, dtype=np.int64)
    mask = size - 1
    for entry, (key, ids) in enumerate(groups.items()):
        keys.add(key)
        values.extend(ids)
        if len(values) == offsets[-1]:  # every key has a value: one value per key then means one each
            raise ValueError(f"the screening index's {name} table: {key!r} has no value")
        offsets.append(len(values))
        hashed = zlib.crc32(key.encode("utf-8"))
        slot = hashed & mask
        while table[slot] >= 0:
            slot = (slot + 1) & mask
        table[slot] = hashed << ENTRY_BITS | entry
    keys.save(folder, f"{name}.keys")
    np.save(folder / f"{name}.table.npy", table)
    np.save(folder / f"{name}.vals.off.npy", np.frombuffer(offsets, dtype=np.int64))
    np.save(folder / f"{name}.vals.npy", np.frombuffer(values, dtype=np.int64) if values else np.zeros(0, np.int64))


def _open_hashed(folder: Path, name: str) -> HashedStrings:
    return HashedStrings(np.load(folder / f"{name}.table.npy", mmap_mode="r"), _open_strings(folder, f"{name}.keys"),
                         np.load(folder / f"{name}.vals.off.npy", mmap_mode="r"),
                         np.load(folder / f"{name}.vals.npy", mmap_mode="r"))


# -- building the file -----------------------------------------------------------------------------

def _parts_text(p: NameParts) -> str:
    return SEP.join((p.core, p.legal_form or "", p.region or "", p.branch if p.branch is not None else "\x00",
                     ",".join(p.places), p.full, p.written))


def _parts_from(text: str) -> NameParts:
    core, form, region, branch, places, full, written = text.split(SEP)
    return NameParts(core, form or None, region or None, None if branch == "\x00" else branch,
                     tuple(places.split(",")) if places else (), full, written)


def build(c: Connection, folder: Path, analyser: NameAnalyser | None, seq: int, rules: str) -> Path:
    """Write the index of every entity into `folder` (new); return it. `seq`: the stamp, read before."""
    folder.mkdir(parents=True)
    e, n, i, rel = t.entities.c, t.entity_names.c, t.entity_identifiers.c, t.entity_relations.c
    low, high = c.execute(select(func.min(e.id), func.max(e.id))).one()
    ids = array("q")
    kinds: list[str] = []
    kind_codes = array("B")
    keys, current_names, person_values = _StringsWriter(), _StringsWriter(), _StringsWriter()
    codes: dict[str, tuple[int, int]] = {}  # code -> (priority, entity): an identifier beats a key, the later one wins
    with_names = analyser is not None
    name_off, code_off = array("q", [0]), array("q", [0])
    name_parts, profile_codes, reps, addresses = _StringsWriter(), _StringsWriter(), _StringsWriter(), _StringsWriter()
    blocks: dict[str, array] = {}
    name_keys: dict[str, array] = {}
    name_count = code_count = 0
    last_key = None
    for start in range(low or 0, (high or -1) + 1, CHUNK):
        stop = start + CHUNK - 1
        names: dict[int, list[str]] = defaultdict(list)
        currents: dict[int, str] = {}
        for entity_id, name, current in c.execute(select(n.entity_id, n.name, n.current)
                                                  .where(n.entity_id.between(start, stop)).order_by(n.entity_id, n.id)):
            names[entity_id].insert(0, name) if current else names[entity_id].append(name)
            if current:
                currents[entity_id] = name
        identifiers: dict[int, list[tuple[str, str, bool]]] = defaultdict(list)
        for entity_id, scheme, value, verified in c.execute(select(i.entity_id, i.scheme, i.value, i.verified)
                                                            .where(i.entity_id.between(start, stop))):
            identifiers[entity_id].append((scheme, value, bool(verified)))
        legal_reps = dict(c.execute(select(rel.entity_id, rel.person_name).where(
            rel.entity_id.between(start, stop), rel.relation == "legal_representative", rel.valid_to.is_(None))).all()) \
            if with_names else {}
        for entity_id, key, kind, address in c.execute(select(e.id, e.key, e.kind, e.address)
                                                       .where(e.id.between(start, stop)).order_by(e.id)):
            ids.append(entity_id)
            if kind not in kinds:
                kinds.append(kind)
            kind_codes.append(kinds.index(kind))
            keys.add(key)
            current_names.add(currents.get(entity_id))
            last_key = (entity_id, key)
            if codes.get(key, (0, 0))[0] <= 0:
                codes[key] = (0, entity_id)
            person_id = None
            for scheme, value, verified in identifiers.get(entity_id, ()):
                if verified:
                    codes[value] = (1, entity_id)
                if scheme in PERSON_SCHEMES and kind == "natural_person":
                    person_id = value
            person_values.add(person_id)
            if not with_names:
                continue
            parts: list[NameParts] = []
            for name in names.get(entity_id, ()):
                if not name:
                    continue
                p = analyser.parts(name)
                if p in parts:
                    continue
                parts.append(p)
                name_parts.add(_parts_text(p))
                name_keys.setdefault(p.key, array("q"))
                if not name_keys[p.key] or name_keys[p.key][-1] != entity_id:
                    name_keys[p.key].append(entity_id)
                for block in name_blocks(p, substitutions=True):
                    found = blocks.get(block)
                    if found is None:
                        blocks[block] = array("q", [entity_id])
                    elif found[-1] != entity_id:
                        found.append(entity_id)
            name_count += len(parts)
            name_off.append(name_count)
            seen: list[str] = []
            for scheme, value, _ in identifiers.get(entity_id, ()):
                if scheme not in PERSON_SCHEMES and value not in seen:
                    seen.append(value)
                    profile_codes.add(value)
            code_count += len(seen)
            code_off.append(code_count)
            reps.add(legal_reps.get(entity_id))
            addresses.add(address)
    if len(kinds) > KINDS_MAX:
        raise ValueError("too many entity kinds for the screening index")
    id_array = np.frombuffer(ids, dtype=np.int64) if ids else np.zeros(0, np.int64)
    np.save(folder / "ids.npy", id_array)
    row_of_id = np.full(int(id_array[-1]) + 1 if len(id_array) else 0, -1, dtype=np.int32)
    row_of_id[id_array] = np.arange(len(id_array), dtype=np.int32)
    np.save(folder / "row_of_id.npy", row_of_id)
    np.save(folder / "kind.npy", np.frombuffer(kind_codes, dtype=np.uint8) if kind_codes else np.zeros(0, np.uint8))
    keys.save(folder, "key")
    current_names.save(folder, "name")
    person_values.save(folder, "person")
    _save_hashed(folder, "codes", {code: (entity_id,) for code, (_, entity_id) in codes.items()})
    del codes
    if with_names:
        np.save(folder / "names.rows.npy", np.frombuffer(name_off, dtype=np.int64))
        name_parts.save(folder, "parts")
        np.save(folder / "pcodes.rows.npy", np.frombuffer(code_off, dtype=np.int64))
        profile_codes.save(folder, "pcodes")
        reps.save(folder, "rep")
        addresses.save(folder, "address")
        _save_hashed(folder, "blocks", blocks)
        del blocks
        _save_hashed(folder, "namekeys", name_keys)
    meta = {"format": FORMAT, "seq": seq, "rules": rules, "names": with_names, "entities": len(ids),
            "kinds": kinds, "last_entity": list(last_key) if last_key else None,
            "stamp_change": _change_at(c, seq),
            "built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    (folder / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    return folder


def _change_at(c: Connection, seq: int) -> list | None:
    C = t.changes.c
    row = c.execute(select(C.kind, C.ref_id).where(C.seq == seq)).first() if seq else None
    return [row.kind, row.ref_id] if row else None


# -- reading the file ------------------------------------------------------------------------------

class IndexFile:
    """The mapped arrays of one built index."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        self.seq = int(self.meta["seq"])
        self.kinds: list[str] = self.meta["kinds"]
        self.ids = np.load(folder / "ids.npy", mmap_mode="r")
        self._ids = _ints(self.ids)
        self.row_of_id = np.load(folder / "row_of_id.npy", mmap_mode="r")
        self._row_of_id, self._rows_len = _ints(self.row_of_id), len(self.row_of_id)
        self.kind = _ints(np.load(folder / "kind.npy", mmap_mode="r"))
        self.key = _open_strings(folder, "key")
        self.name = _open_strings(folder, "name")
        self.person = _open_strings(folder, "person")
        self.codes = _open_hashed(folder, "codes")
        self.has_names = bool(self.meta["names"])
        if self.has_names:
            self.names_off = np.load(folder / "names.rows.npy", mmap_mode="r")
            self.parts = _open_strings(folder, "parts")
            self.pcodes_off = np.load(folder / "pcodes.rows.npy", mmap_mode="r")
            self.pcodes = _open_strings(folder, "pcodes")
            self._names_at, self._pcodes_at = _ints(self.names_off), _ints(self.pcodes_off)
            self.rep = _open_strings(folder, "rep")
            self.address = _open_strings(folder, "address")
            self.blocks = _open_hashed(folder, "blocks")
            self.namekeys = _open_hashed(folder, "namekeys")

    def __len__(self) -> int:
        return len(self.ids)

    def row(self, entity_id: int) -> int:
        if 0 <= entity_id < self._rows_len:
            return self._row_of_id[entity_id]
        return -1

    def code(self, code: str) -> int | None:
        return self.codes.first(code)

    def keys_and_names(self, entity_ids: np.ndarray) -> tuple[list[str | None], list[str | None]]:
        """The key and current name of each entity (int64 array), None for one not in the file (and
        for an empty name); rows and strings looked up as arrays, two lists rather than a tuple per
        entity."""
        rows = self.rows(entity_ids)
        found = rows >= 0
        if found.all():
            return cast(list[str | None], self.key.many(rows)), [name or None for name in self.name.many(rows)]
        keys: list[str | None] = [None] * len(rows)
        names: list[str | None] = [None] * len(rows)
        inside = rows[found]
        for k, key, name in zip(np.flatnonzero(found).tolist(), self.key.many(inside), self.name.many(inside)):
            keys[k], names[k] = key, name or None
        return keys, names

    def rows(self, entity_ids: np.ndarray) -> np.ndarray:
        """The file's row of each entity id (an int64 array), -1 for one not in the file."""
        inside = (entity_ids >= 0) & (entity_ids < self._rows_len)
        rows = np.full(len(entity_ids), -1, dtype=np.int64)
        rows[inside] = np.asarray(self.row_of_id)[entity_ids[inside]]
        return rows

    def persons(self) -> dict[int, str]:
        """Natural persons and their ID numbers (few: read into a dict)."""
        out = {}
        offsets = np.asarray(self.person.offsets)
        for row in np.flatnonzero(offsets[1:] != offsets[:-1]):
            out[int(self.ids[row])] = self.person[int(row)]
        return out

    def profile(self, row: int) -> Profile:
        """The entity's `Profile`, as `EntityIndex.add` would make it."""
        names_at, codes_at = self._names_at, self._pcodes_at
        names = [_parts_from(self.parts[k]) for k in range(names_at[row], names_at[row + 1])]
        codes = [self.pcodes[k] for k in range(codes_at[row], codes_at[row + 1])]
        return Profile(self._ids[row], names, codes, self.rep[row] or None,
                       self.kinds[self.kind[row]] == "natural_person", self.address[row] or None)


def index_folder(engine: Engine) -> Path | None:
    """Where a store's index is kept; None for a store that lives in memory."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and (not url.database or url.database == ":memory:") \
            and not os.environ.get(INDEX_DIR_ENV):
        return None
    return store_folder(engine, "screen-index", INDEX_DIR_ENV)


def _fits(c: Connection, index: IndexFile, rules: str, names: bool, seq: int) -> bool:
    meta = index.meta
    if meta.get("format") != FORMAT or meta.get("rules") != rules or (names and not index.has_names):
        return False
    if index.seq > seq or (index.seq and _change_at(c, index.seq) != meta.get("stamp_change")):
        return False  # another store, or this one restored from before the file
    C = t.changes.c
    behind = c.execute(select(func.count(func.distinct(C.ref_id))).where(C.kind == "entity", C.seq > index.seq)) \
        .scalar_one()
    if behind > max(REBUILD_AFTER, REBUILD_SHARE * len(index)):
        return False  # so much changed since that catching up would hold it all as objects: build anew
    last = meta.get("last_entity")
    if last is not None:
        key = c.execute(select(t.entities.c.key).where(t.entities.c.id == last[0])).scalar()
        if key != last[1]:
            return False
    return True


def open_index(engine: Engine, c: Connection, analyser: NameAnalyser | None, rules: str,
               seq: int) -> tuple[IndexFile, bool]:
    """The store's index file if it fits the store, else a new one built now: (index, built)."""
    base = index_folder(engine)
    if base is not None:
        try:
            name = (base / CURRENT).read_text(encoding="utf-8").strip()
            found = IndexFile(base / name)
            if _fits(c, found, rules, analyser is not None, seq):
                return found, False
        except (OSError, ValueError, KeyError):
            pass
    temporary = base is None
    if temporary:
        base = Path(tempfile.mkdtemp(prefix="xinyong-screen-index-"))
    else:
        private_folder(base)  # persons' ID numbers, whole: the owner's only (mkdtemp's folder is too)
    name = f"index-{seq}-{os.getpid()}-{os.urandom(4).hex()}"
    folder = build(c, base / name, analyser, seq, rules)
    built = IndexFile(folder)
    if temporary:
        shutil.rmtree(base, ignore_errors=True)  # mapped files stay readable until the process ends
    else:
        pointer = base / f"{CURRENT}.{os.getpid()}"
        pointer.write_text(name + "\n", encoding="utf-8")
        os.replace(pointer, base / CURRENT)
        for old in base.iterdir():  # earlier builds: unlinked (a process mapping one keeps reading it)
            if old.is_dir() and old.name.startswith("index-") and old.name != name:
                shutil.rmtree(old, ignore_errors=True)
    return built, True


# -- the entity index over the file ----------------------------------------------------------------

class _Profiles(Mapping):
    """entity id -> Profile: the overlay (added or changed since the file), else read from the file."""

    def __init__(self, index: IndexFile):
        self.file = index
        self.overlay: dict[int, Profile] = {}
        self.extra = 0  # overlay entities not in the file

    def get(self, entity_id: int, default: Any = None) -> Any:
        found = self.overlay.get(entity_id)
        if found is not None:
            return found
        row = self.file.row(entity_id)
        return default if row < 0 else self.file.profile(row)

    def __getitem__(self, entity_id: int) -> Profile:
        found = self.get(entity_id)
        if found is None:
            raise KeyError(entity_id)
        return found

    def __setitem__(self, entity_id: int, profile: Profile) -> None:
        if entity_id not in self.overlay and self.file.row(entity_id) < 0:
            self.extra += 1
        self.overlay[entity_id] = profile

    def __contains__(self, entity_id: object) -> bool:
        return entity_id in self.overlay or (isinstance(entity_id, int) and self.file.row(entity_id) >= 0)

    def __len__(self) -> int:
        return len(self.file) + self.extra

    def __iter__(self) -> Iterator[int]:
        seen = set(self.overlay)
        yield from self.overlay
        for entity_id in self.file.ids:
            if int(entity_id) not in seen:
                yield int(entity_id)


class _Lists(Mapping):
    """block or name key -> ids: the file's, then the overlay's. `[key]` is the overlay's (mutable) part."""

    def __init__(self, hashed: HashedStrings | None, factory: type, pairs: bool = False):
        self.hashed, self.factory, self.pairs = hashed, factory, pairs
        self.overlay: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        found = self.overlay.get(key)
        if found is None:
            found = self.overlay[key] = self.factory()
        return found

    def get(self, key: str, default: Any = None) -> Any:
        from_file = self.hashed.get(key) if self.hashed is not None else None
        added = self.overlay.get(key)
        if from_file is None and not added:
            return default
        if not added and not self.pairs:
            return from_file  # a block: `candidates` reads its length first, and skips a common one
        ids = from_file.tolist() if from_file is not None else []
        if self.pairs:
            out = [(entity_id, None) for entity_id in ids]
            out += [pair for pair in (added or ()) if pair[0] not in set(ids)]
            return out
        return ids + list(added or ())

    def __contains__(self, key: object) -> bool:
        return self.get(key) is not None  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.overlay) + (len(self.hashed.keys) if self.hashed is not None else 0)

    def __iter__(self) -> Iterator[str]:
        yield from self.overlay
        if self.hashed is not None:
            for k in range(len(self.hashed.keys)):
                yield self.hashed.keys[k]


class CompactEntityIndex(EntityIndex):
    """`EntityIndex` over an `IndexFile`: the same candidates, exact matches and ranking."""

    substitution_blocks = True

    def __init__(self, index: IndexFile, analyser: NameAnalyser, matcher: Matcher | None = None):
        super().__init__(analyser, matcher)
        self.file = index
        self.profiles = _Profiles(index)  # type: ignore[assignment]
        self.by_block = _Lists(index.blocks, list)  # type: ignore[assignment]
        self.by_name_key = _Lists(index.namekeys, set, pairs=True)  # type: ignore[assignment]

    def add(self, entity_id: int, key: str, origin: str, person: bool, names: Iterable[str],
            identifiers: Iterable[tuple[str, str, bool]], legal_rep: str | None, address: str | None = None) -> None:
        profiles: _Profiles = self.profiles  # type: ignore[assignment]
        if entity_id not in profiles.overlay:
            row = self.file.row(entity_id)
            if row >= 0:  # from now on in the overlay; what the file knows stays known
                profiles.overlay[entity_id] = self.file.profile(row)
        super().add(entity_id, key, origin, person, names, identifiers, legal_rep, address)

    def holding_core(self, parts: NameParts) -> Iterable[int]:
        """The file keeps no table by name core: an entity holding the core is in the block of each of
        its bigrams (the overlay's, read since, as well), so in the smallest, read whole (`same_core`
        then reads their names). Not `candidates`: it skips common blocks and keeps the 30 best, and a
        register's hundreds of 宏达贸易… firms pushed a listed 北京宏达贸易 out of them."""
        blocks = [self.by_block.get("n" + gram, ()) for gram in sorted(bigrams(parts.core))]
        return {int(entity_id) for entity_id in min(blocks, key=len, default=())}


def load_names(index: IndexFile, c: Connection, analyser: NameAnalyser) -> CompactEntityIndex:
    return CompactEntityIndex(index, analyser, Matcher(load_model(c)))
