"""The store's tables (SQLAlchemy Core): one schema for SQLite and PostgreSQL.

Alembic migrations in `migrations/` create and change these; this module is what code
queries against. Records are immutable versions; the audit table is append-only.
"""

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# One row per setting of the store, e.g. which pack it runs.
settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

entities = Table(
    "entities",
    metadata,
    Column("id", Integer, primary_key=True),
    # The public key: the USCC when verified, else a generated opaque key.
    Column("key", String(40), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("status", String(32)),
    Column("region", String(12)),
    Column("address", Text),
    Column("verified", Boolean, nullable=False),
    # register: from the market-entity register; resolution: made for an unmatched subject
    Column("origin", String(12), nullable=False, server_default="register"),
    Column("established", Date),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

entity_identifiers = Table(
    "entity_identifiers",
    metadata,
    Column("entity_id", Integer, ForeignKey("entities.id"), nullable=False, index=True),
    Column("scheme", String(16), nullable=False),
    Column("value", String(64), nullable=False),
    Column("verified", Boolean, nullable=False),
    UniqueConstraint("scheme", "value", name="uq_identifier"),
)

# Names with validity periods: the current name has valid_to NULL; former names
# carry the date they stopped being used, when known.
entity_names = Table(
    "entity_names",
    metadata,
    Column("id", Integer, primary_key=True),
    # found by entity through uq_entity_name, whose first column it is (migration 0030)
    Column("entity_id", Integer, ForeignKey("entities.id"), nullable=False),
    Column("name", Text, nullable=False),
    Column("normalised", Text, nullable=False, index=True),
    Column("current", Boolean, nullable=False),
    Column("valid_from", Date),
    Column("valid_to", Date),
    # None: the registered (Chinese) name, current or former; "en": the registered English name
    Column("language", String(8)),
    UniqueConstraint("entity_id", "name", name="uq_entity_name"),
)

# Relations of an entity to a person or another entity: its legal representative (from the
# register; no source record), and from relations records (migration 0021) its shareholders,
# actual controller, principal and key staff, each with its role, share and source record.
# Ended relations keep their row with valid_to.
entity_relations = Table(
    "entity_relations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("entity_id", Integer, ForeignKey("entities.id"), nullable=False, index=True),
    Column("relation", String(32), nullable=False),
    Column("person_name", Text),
    Column("person_id", String(32)),  # restricted: never shown unmasked
    Column("other_entity_id", Integer, ForeignKey("entities.id")),
    Column("valid_from", Date),
    Column("valid_to", Date),
    Column("role", String(32)),  # as the pack's role field names it: 股东, 董事, 经理...
    Column("share", Float),  # percent of the capital, for a shareholder
    Column("other_name", Text),  # a firm party's name as the record gave it (found or not)
    Column("record_id", Integer, ForeignKey("records.id")),  # the relations record it comes from
)
# Indexed where set (migration 0030): a register's legal representatives, most relations, have
# no ID number, firm or record, and an entry for each NULL cost a third of inserting them. A
# query on one of these columns (=, IN, a join) implies it is not NULL, so both engines use them.
for _column in (entity_relations.c.person_id, entity_relations.c.other_entity_id, entity_relations.c.record_id):
    Index(f"ix_entity_relations_{_column.name}", _column,
          sqlite_where=_column.is_not(None), postgresql_where=_column.is_not(None))

batches = Table(
    "batches",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("authority", String(32), nullable=False),
    Column("category", String(32), nullable=False),
    Column("file_name", Text, nullable=False),
    Column("file_hash", String(64), nullable=False),
    Column("file_format", String(8), nullable=False),
    Column("encoding", String(16)),
    Column("headers", JSON, nullable=False),  # original headers, for the rejects file
    Column("mapping", JSON, nullable=False),  # header -> field, as applied
    Column("rows", Integer, nullable=False),
    Column("accepted", Integer, nullable=False),
    Column("quarantined", Integer, nullable=False),
    Column("duplicates", Integer, nullable=False),
    Column("unchanged", Integer, nullable=False),
    Column("new_versions", Integer, nullable=False),
    Column("warnings", Integer, nullable=False),  # identifier problems only
    Column("notes", Integer, nullable=False, server_default="0"),  # other observations on rows
    Column("pack", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("authority", "category", "file_hash", name="uq_batch_content"),
)

# A record version. record_key = AUTHORITY:NATURAL_KEY; a correction or revocation of
# the same decision is a new row with version + 1, never an update of the old one.
records = Table(
    "records",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("record_key", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("authority", String(32), nullable=False),
    Column("category", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # active | revoked
    Column("subject_name", Text),
    Column("subject_kind", String(32)),
    Column("subject_code", String(64)),
    Column("subject_scheme", String(16)),
    Column("subject_code_verified", Boolean, nullable=False),
    Column("decision_date", Date),
    Column("fields", JSON, nullable=False),
    Column("extras", JSON, nullable=False),
    Column("warnings", JSON, nullable=False),
    Column("notes", JSON),  # observations that are not identifier problems; absent before 0011
    Column("content_hash", String(32), nullable=False),
    Column("batch_id", Integer, ForeignKey("batches.id"), nullable=False),
    Column("row_number", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("record_key", "version", name="uq_record_version"),
)
Index("ix_records_batch", records.c.batch_id, records.c.version)  # counts first versions from the index alone
Index("ix_records_later_versions", records.c.record_key,  # corrections and revocations: few, listed apart
      sqlite_where=records.c.version > 1, postgresql_where=records.c.version > 1)
Index("ix_records_subject_code", records.c.subject_code)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("batch_id", Integer, ForeignKey("batches.id"), nullable=False, index=True),
    Column("row_number", Integer, nullable=False),
    Column("field", Text),
    Column("reason", Text, nullable=False),  # in English, as the rejects file gives it
    Column("raw", JSON, nullable=False),  # the row as sent: list of cell values
    Column("reason_code", String(40)),  # domain.values.REASON_CODES: pages render it per language
    Column("params", JSON),  # the reason's parameters ({"text": ...}, {"field": ...})
)

# Append-only and hash-chained: hash = H(prev_hash + canonical event).
audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", String(64), nullable=False),
    Column("object_type", String(32), nullable=False),
    Column("object_id", Text, nullable=False),
    Column("reason", Text),
    Column("legal_basis", Text),
    Column("payload", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
)

# -- resolution ----------------------------------------------------------------------------

# The current link of each record version to an entity, and how it was made.
record_links = Table(
    "record_links",
    metadata,
    Column("record_id", BigInteger().with_variant(Integer, "sqlite"), ForeignKey("records.id"),
           primary_key=True),
    Column("state", String(8), nullable=False),  # linked | review | new
    Column("entity_id", Integer, ForeignKey("entities.id"), index=True),  # NULL while in review
    # identifier | exact_name | score | judgement | new_entity
    Column("method", String(16), nullable=False),
    Column("score", Float),
    Column("explanation", JSON, nullable=False),  # score components, candidates
    Column("resolved_at", DateTime(timezone=True), nullable=False),
)
Index("ix_record_links_state", record_links.c.state)

# Human decisions on a record's subject; kept forever and applied before any scorer.
judgements = Table(
    "judgements",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("record_key", Text, nullable=False, index=True),
    Column("entity_id", Integer, ForeignKey("entities.id"), nullable=False),
    Column("verdict", String(8), nullable=False),  # match | no_match
    Column("actor", Text, nullable=False),
    Column("reason", Text),
    Column("at", DateTime(timezone=True), nullable=False),
)

# Splink models trained on this store's data, as Splink's own JSON.
resolution_models = Table(
    "resolution_models",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("purpose", String(32), nullable=False),  # e.g. entity_dedupe
    Column("model", JSON, nullable=False),
    Column("trained_on", Integer, nullable=False),  # rows it was trained on
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Candidate duplicate entities found by batch de-duplication; merged only by a judgement.
duplicate_pairs = Table(
    "duplicate_pairs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("entity_a", Integer, ForeignKey("entities.id"), nullable=False),
    Column("entity_b", Integer, ForeignKey("entities.id"), nullable=False),
    Column("probability", Float, nullable=False),
    Column("engine", String(8), nullable=False),
    Column("model_id", Integer, ForeignKey("resolution_models.id"), nullable=False),
    Column("state", String(16), nullable=False),  # open | same | different
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("entity_a", "entity_b", name="uq_duplicate_pair"),
)

# -- lists and due process -------------------------------------------------------------------

# A listing of an entity on a list. Its state changes only through
# `store.listings.transition`, which applies the domain state machine and writes the
# transition and its audit event in the same transaction.
listings = Table(
    "listings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("entity_id", Integer, ForeignKey("entities.id"), nullable=False, index=True),
    Column("list_code", String(32), nullable=False, index=True),
    Column("rule_version", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("subject_kind", String(32), nullable=False),
    Column("language", String(2), nullable=False),
    Column("proposed_on", Date, nullable=False),
    Column("notified_on", Date),
    Column("objection_deadline", Date),
    Column("effective_from", Date),
    Column("effective_to", Date),
    Column("review_due", Date),  # open-ended listings are reviewed at the pack's interval
    Column("ended_on", Date),
    Column("end_reason", String(32)),  # domain.listings.END_REASONS; set with ended_on
    Column("extended_years", Integer),  # years added by extension decisions (`listing extend`)
    Column("created_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("state IN ('proposed', 'notified', 'under_review', 'effective', 'expired', "
                    "'repaired', 'withdrawn')", name="ck_listing_state"),
)

listing_evidence = Table(
    "listing_evidence",
    metadata,
    Column("listing_id", Integer, ForeignKey("listings.id"), primary_key=True),
    Column("record_id", BigInteger().with_variant(Integer, "sqlite"), ForeignKey("records.id"), primary_key=True),
    Column("note", Text),  # a test the rule could not make on this record, e.g. "ratio not checked"
)
Index("ix_listing_evidence_record", listing_evidence.c.record_id)

# Every change of state with the date it took effect (on_date) and when it was recorded,
# so that the state on any past date can be read back.
listing_transitions = Table(
    "listing_transitions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("listing_id", Integer, ForeignKey("listings.id"), nullable=False, index=True),
    Column("from_state", String(16)),
    Column("to_state", String(16), nullable=False),
    Column("on_date", Date, nullable=False),
    Column("actor", Text, nullable=False),
    Column("reason", Text),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    # the authority the step was taken as (the list's own, or the pack's reviewing authority);
    # NULL for steps that time takes (`process`)
    Column("authority", String(32)),
)

reminders = Table(
    "reminders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("listing_id", Integer, ForeignKey("listings.id"), nullable=False, index=True),
    Column("on_date", Date, nullable=False),
    Column("actor", Text, nullable=False),
    Column("reason", Text),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

notices = Table(
    "notices",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("listing_id", Integer, ForeignKey("listings.id"), nullable=False, index=True),
    Column("language", String(2), nullable=False),
    Column("text", Text, nullable=False),
    Column("issued_on", Date, nullable=False),
    Column("objection_deadline", Date, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

objections = Table(
    "objections",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("listing_id", Integer, ForeignKey("listings.id"), index=True),
    Column("record_key", Text, index=True),
    Column("reason", Text, nullable=False),
    Column("state", String(8), nullable=False),  # open | upheld | rejected
    Column("filed_on", Date, nullable=False),
    Column("filed_by", Text, nullable=False),
    Column("decided_on", Date),
    Column("decided_by", Text),
    Column("decision_reason", Text),
    Column("authority", String(32)),  # the deciding authority
    Column("late", Boolean),  # decided after the list's review_days
)

# A repair application: of a listing (listing_id), or of a penalty record's publicity (record_key).
repairs = Table(
    "repairs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("listing_id", Integer, ForeignKey("listings.id"), index=True),
    Column("record_key", Text, index=True),
    Column("commitment", Text, nullable=False),
    Column("commitment_sha256", String(64), nullable=False),
    Column("evidence", JSON, nullable=False),  # [{name, sha256, size}]
    Column("state", String(8), nullable=False),  # pending | approved | refused
    Column("applied_on", Date, nullable=False),
    Column("applied_by", Text, nullable=False),
    Column("accepted_on", Date),  # the answer: the application accepted for decision
    Column("decided_on", Date),
    Column("decided_by", Text),
    Column("decision_reason", Text),
    Column("authority", String(32)),  # the deciding authority
    Column("late", Boolean),  # answered or decided after the pack's working-day deadline
)
# One application waiting per listing or record: a second (a double submit) is refused by the store itself.
Index("uq_repairs_pending", repairs.c.listing_id, unique=True,
      sqlite_where=repairs.c.state == "pending", postgresql_where=repairs.c.state == "pending")
Index("uq_repairs_pending_record", repairs.c.record_key, unique=True,
      sqlite_where=repairs.c.state == "pending", postgresql_where=repairs.c.state == "pending")

# -- screening and consuming authorities ------------------------------------------------------

# API keys of authorities. The secret is shown once and stored only as its SHA-256: keys are
# 32 random bytes, so a slow hash adds nothing against guessing.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("authority", String(32), nullable=False, index=True),
    Column("prefix", String(16), nullable=False),  # shown in lists, to tell keys apart
    Column("secret_sha256", String(64), nullable=False, unique=True),
    Column("scopes", JSON, nullable=False),  # screen | read_restricted | operate | submit[:category]
    Column("rate_per_second", Float, nullable=False),
    Column("burst", Integer, nullable=False),
    Column("label", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True)),  # NULL: until revoked
)

# Every screening and restricted read: who asked, why, about whom, and what they were told.
query_log = Table(
    "query_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("query_id", String(32), nullable=False, unique=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("key_id", Integer, ForeignKey("api_keys.id")),  # NULL: the command line
    Column("authority", String(32), nullable=False, index=True),
    Column("purpose", Text, nullable=False),
    Column("endpoint", String(32), nullable=False),
    Column("query", Text, nullable=False),  # the identifier (masked for a person) or name asked about
    Column("subject", String(40)),  # the entity key it resolved to
    Column("action", String(32)),
    Column("as_of", Date),
    Column("result", String(16), nullable=False),
    Column("measures", JSON, nullable=False),
)

# What a consuming authority did with a screening answer.
feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("query_id", String(32), index=True),
    Column("key_id", Integer, ForeignKey("api_keys.id"), nullable=False),
    Column("authority", String(32), nullable=False),
    Column("subject", String(40), nullable=False),
    Column("measure", String(32), nullable=False),
    Column("applied", Boolean, nullable=False),
    Column("reason", Text),
    Column("reference", Text),  # the consumer's own case or contract number
    Column("on_date", Date, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

# Batch screening jobs; their input and results are files in the store's jobs folder.
screen_jobs = Table(
    "screen_jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("key_id", Integer, ForeignKey("api_keys.id")),
    Column("authority", String(32), nullable=False),
    Column("purpose", Text, nullable=False),
    Column("state", String(8), nullable=False),  # queued | running | done | failed
    Column("input_format", String(8), nullable=False),  # csv | jsonl
    Column("action", String(32)),  # default for rows that name none
    Column("as_of", Date),
    Column("total", Integer),
    Column("done", Integer, nullable=False),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("worker_pid", Integer),  # the worker running it, on the serving host
    Column("heartbeat_at", DateTime(timezone=True)),  # the worker's last sign of life
    # {"done", "csv_bytes", "jsonl_bytes"}: where a restarted worker takes up (results and log committed to there)
    Column("resume", JSON),
)

# -- the web portal ----------------------------------------------------------------------------

# Credit reports issued as PDF: the verification code printed on the report finds this row,
# and the PDF's SHA-256 shows whether a presented copy is unaltered.
reports = Table(
    "reports",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("entity_id", Integer, ForeignKey("entities.id"), nullable=False, index=True),
    Column("language", String(2), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("pdf_sha256", String(64), nullable=False),
    Column("pages", Integer, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    # the audit event whose Merkle root covers this issuance (NULL until the next seal)
    Column("sealed_seq", Integer),
)

# Sign-in credentials issued to a subject for its own file; only the secret's hash is kept.
subject_credentials = Table(
    "subject_credentials",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("entity_id", Integer, ForeignKey("entities.id"), nullable=False, index=True),
    Column("secret_sha256", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
)

# Files attached to an objection (stored by content hash in the store's files folder).
objection_attachments = Table(
    "objection_attachments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("objection_id", Integer, ForeignKey("objections.id"), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("content_type", String(100)),
)

# Server-side web sessions: the cookie carries only a random id, stored here as its SHA-256.
# Signing out deletes the row; revoking a subject's credentials or an operator's key deletes theirs.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_sha256", String(64), primary_key=True),
    Column("data", JSON, nullable=False),
    Column("subject_entity_id", Integer, ForeignKey("entities.id"), index=True),
    Column("api_key_id", Integer, ForeignKey("api_keys.id"), index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False, index=True),
)

# Ed25519-signed checkpoints of the audit chain's head (seq, hash, time). The signing key lives
# beside the audit key, never in the database; a checkpoint ahead of the chain shows a deleted tail.
chain_checkpoints = Table(
    "chain_checkpoints",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", Integer, nullable=False, index=True),
    Column("hash", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("public_key", String(64), nullable=False),  # hex of the raw Ed25519 public key
    Column("signature", String(128), nullable=False),  # hex, over `checkpoint_message`
)

# A supervision grade shared with an authority (restricted API, console): what it was given,
# as of which date, with every point (record, rule, weight), for which purpose. Grades shown to
# nobody are computed on demand and never stored.
grades_shared = Table(
    "grades_shared",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("entity_id", Integer, ForeignKey("entities.id"), nullable=False, index=True),
    Column("grade", String(8), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("points", JSON, nullable=False),
    Column("pack_version", String(40), nullable=False),
    Column("authority", String(40), nullable=False),
    Column("purpose", String(40), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("shared_at", DateTime(timezone=True), nullable=False),
)

# What changed, in commit order (migration 0015): written by triggers in the writing transaction,
# never by the code. On PostgreSQL `seq` is drawn at COMMIT under an advisory lock, so a
# transaction that started first and commits last gets the higher numbers: a reader that has
# seen N has seen everything below N. `kind` is entity (ref_id: the entity; its names,
# identifiers and relations too), listing, transition (ref_id: listing_transitions.id) or
# objection (ref_id: its listing). Screening's refresh and `/v1/changes` follow it.
changes = Table(
    "changes",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("ref_id", BigInteger().with_variant(Integer, "sqlite")),
)
Index("ix_changes_kind_seq", changes.c.kind, changes.c.seq)
# -- open data and alerts (migration 0020) ---------------------------------------------------------

# What the public surfaces show, one row per fact (an entity's identity, a listing in force or in
# its public history, a public record within its publicity period), as `services.publication.opendata` last
# computed it: the diff against a new computation is the public change log.
public_facts = Table(
    "public_facts",
    metadata,
    Column("fact_id", String(80), primary_key=True),  # entity:KEY | listing:ID | record:HASH
    Column("kind", String(16), nullable=False),  # entity | listing | record
    Column("entity", String(40), nullable=False, index=True),
    Column("hash", String(32), nullable=False),
    Column("data", JSON, nullable=False),  # masked, as every public surface shows it
)

# The public change log: each add, change or delete of a public fact. `seq` is the change
# sequence of `publish --since`, `/v1/public/changes` and the webhooks; rows are written under
# one lock, so seq order is commit order. `event_id` is stable: a redelivery carries the same.
public_events = Table(
    "public_events",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("event_id", String(40), nullable=False, unique=True),
    Column("type", String(32), nullable=False),
    Column("entity", String(40), nullable=False, index=True),
    Column("fact_id", String(80), nullable=False),
    Column("op", String(8), nullable=False),  # add | change | delete
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("change", JSON, nullable=False),
)

# Watchlists: a consumer's entities and the URL its events are POSTed to, signed with `secret`
# (HMAC-SHA256; kept as given, since signing needs it).
subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("key_id", Integer, ForeignKey("api_keys.id"), nullable=False, index=True),
    Column("authority", String(32), nullable=False),
    Column("url", Text, nullable=False),
    Column("secret", String(64), nullable=False),
    Column("entities", JSON, nullable=False),  # entity keys
    Column("purpose", String(32)),  # required when a natural person is watched
    Column("legal_basis", Text),  # the pack's, for a natural person watched
    Column("from_seq", BigInteger, nullable=False),  # events after this seq are delivered
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("deleted_at", DateTime(timezone=True)),
    # persons no longer watched, by entity key: {"on", "reason", "seq"} (the legal basis ended)
    Column("closed", JSON),
)

# The outbox of webhook deliveries: one row per (subscription, event), tried until delivered.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("subscription_id", String(32), ForeignKey("subscriptions.id"), nullable=False, index=True),
    Column("event_seq", BigInteger, nullable=False),
    Column("event_id", String(40), nullable=False),
    Column("state", String(12), nullable=False),  # pending | delivered | cancelled
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    UniqueConstraint("subscription_id", "event_seq", name="uq_delivery"),
)
Index("ix_webhook_deliveries_due", webhook_deliveries.c.state, webhook_deliveries.c.next_attempt_at)

# -- foreign and international lists (migration 0022) ---------------------------------------------

# A list of another jurisdiction or an international body (kind `foreign`), as last imported:
# its source, date and version. A re-import replaces the version (the row is updated: a change
# screening's refresh follows, see `changes`).
foreign_lists = Table(
    "foreign_lists",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(40), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # foreign
    Column("format", String(8), nullable=False),  # un | ftm
    Column("source", Text, nullable=False),
    Column("list_date", Date),
    Column("version", String(80), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("imported_at", DateTime(timezone=True), nullable=False),
)

# A designation on a foreign list: never a listing (no due process, no public page). One that
# disappears from a later version keeps its row with `ended_on` and the version that ended it.
foreign_designations = Table(
    "foreign_designations",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("list_id", Integer, ForeignKey("foreign_lists.id"), nullable=False),
    Column("source_id", String(200), nullable=False),  # UN DATAID, FtM entity id
    Column("schema", String(40), nullable=False),  # organisation | person (UN); the FtM schema
    Column("name", Text, nullable=False),
    Column("aliases", JSON, nullable=False),  # further names
    Column("identifiers", JSON, nullable=False),  # [[scheme, value]], verified by domain.identifiers
    Column("details", JSON, nullable=False),  # reference number, programme, addresses... as given
    Column("listed_on", Date),
    Column("first_version", String(80), nullable=False),
    Column("list_version", String(80), nullable=False),  # the latest version that carries it
    Column("ended_on", Date),
    Column("ended_version", String(80)),
)
Index("ix_foreign_designations_list", foreign_designations.c.list_id, foreign_designations.c.source_id)
