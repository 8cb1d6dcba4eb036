"""Table definitions (SQLAlchemy Core), one module per domain, on one shared `metadata`.

API schemas live in ``storelens.api.schemas``. The event log is the source of truth;
every other table is reference data, a projection of the log that can be rebuilt
from it, or the working data of one domain:

- `schema`: the shared `metadata`, its naming convention and the column types;
- `log`: the event log, consumer positions and processor state, dead letters, audit;
- `reference`: stores, layouts, zones, cameras, products, users, staff, device keys;
- `cdp`: customer records, orders, identity resolution, consent (the customer 360);
- `instore`: the ops processor's facts, alert rules and alerts, staff notices;
- `recognition`: face consents, the consent texts, sealed embeddings, the per-store switch;
- `predict`: scoring runs, features, scores and segments;
- `recommend`: stock, declines, the learned lists and impressions.

Everything is re-exported here, so callers and the Alembic migrations import from
``storelens.storage.tables`` alone; importing it registers every table on `metadata`.
"""

from __future__ import annotations

from storelens.storage.tables.cdp import (
    consent_records,
    customer_aliases,
    customers,
    identity_changes,
    identity_decisions,
    identity_models,
    identity_runs,
    order_lines,
    orders,
)
from storelens.storage.tables.instore import (
    alerts,
    notices,
    ops_orders,
    ops_queue_waits,
    ops_shifts,
    ops_visits,
    ops_zone_visits,
    store_alert_rules,
)
from storelens.storage.tables.log import (
    audit_log,
    audit_subjects,
    consumer_offsets,
    dead_letters,
    events,
    processor_state,
)
from storelens.storage.tables.predict import (
    customer_features,
    customer_scores,
    predict_models,
    segment_members,
    segments,
)
from storelens.storage.tables.recognition import (
    face_consent_texts,
    face_consents,
    face_embeddings,
    store_recognition,
)
from storelens.storage.tables.recommend import (
    recommend_blend,
    recommend_declines,
    recommend_impressions,
    store_stock,
)
from storelens.storage.tables.reference import (
    api_keys,
    cameras,
    products,
    staff,
    store_layouts,
    stores,
    users,
    zones,
)
from storelens.storage.tables.schema import Document, Id, Seq, UTCDateTime, metadata, naming

__all__ = [
    "Document",
    "Id",
    "Seq",
    "UTCDateTime",
    "alerts",
    "api_keys",
    "audit_log",
    "audit_subjects",
    "cameras",
    "consent_records",
    "consumer_offsets",
    "customer_aliases",
    "customer_features",
    "customer_scores",
    "customers",
    "dead_letters",
    "events",
    "face_consent_texts",
    "face_consents",
    "face_embeddings",
    "identity_changes",
    "identity_decisions",
    "identity_models",
    "identity_runs",
    "metadata",
    "naming",
    "notices",
    "ops_orders",
    "ops_queue_waits",
    "ops_shifts",
    "ops_visits",
    "ops_zone_visits",
    "order_lines",
    "orders",
    "predict_models",
    "processor_state",
    "products",
    "recommend_blend",
    "recommend_declines",
    "recommend_impressions",
    "segment_members",
    "segments",
    "staff",
    "store_alert_rules",
    "store_layouts",
    "store_recognition",
    "store_stock",
    "stores",
    "users",
    "zones",
]
