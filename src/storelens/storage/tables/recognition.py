"""Returning-customer recognition (storelens.recognition): biometric data, opt-in only.

Kept apart as the most sensitive data storelens holds. An embedding hangs off the
consent it was taken under (deleting the consent row deletes it, by foreign key), is
stored sealed with AES-GCM (docs/privacy.md), and a store matches no one until its
``store_recognition`` row switches recognition on.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)

from storelens.storage.tables.schema import Document, Id, UTCDateTime, metadata, utc_now

__all__ = ["face_consent_texts", "face_consents", "face_embeddings", "store_recognition"]

face_consents = Table(
    "face_consents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", Id, nullable=False),
    Column("purpose", String(64), nullable=False),
    # the consent text the person read: a version in face_consent_texts (not a foreign
    # key: rows recorded before texts were published name versions no row holds)
    Column("text_version", String(40), nullable=False),
    # SHA-256 of those words as published; NULL before texts were published (0021), so a
    # text published later under the same version is never taken for what they read
    Column("text_sha256", String(64)),
    Column("store_ids", Document),  # stores it covers; NULL: every store of the chain
    Column("granted_at", UTCDateTime, nullable=False),
    Column("recorded_by", String(128), nullable=False),  # the staff member or admin
    Column("withdrawn_at", UTCDateTime),
    Column("withdrawn_by", String(128)),
    # the enrollment that replaced this one, where that (not the member) ended it
    Column("replaced_by_consent", Integer),
    # A staff member's enrollment matches no one until an admin approves it: otherwise
    # staff could enroll their own face under a customer's id and read that customer's
    # history from the notice (docs/staff-app.md). An admin's is approved as recorded.
    Column("approved_at", UTCDateTime),
    Column("approved_by", String(128)),
    Index(None, "customer_id"),
)

face_embeddings = Table(
    "face_embeddings",
    metadata,
    Column("id", Uuid, primary_key=True),  # also the AES-GCM associated data
    Column("consent_id", ForeignKey("face_consents.id", ondelete="CASCADE"), nullable=False),
    Column("customer_id", Id, nullable=False),
    Column("key_id", String(16), nullable=False),  # which key encrypted it
    Column("nonce", LargeBinary(12), nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),  # 128 float32 + the GCM tag
    Column("created_at", UTCDateTime, nullable=False, default=utc_now),
    Index(None, "customer_id"),
    Index(None, "consent_id"),
)

store_recognition = Table(
    "store_recognition",
    metadata,
    Column("store_id", ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False, default=utc_now),
    Column("updated_by", String(128)),
)

face_consent_texts = Table(
    "face_consent_texts",
    metadata,
    # What a member reads before agreeing to recognition, as published by an admin. A
    # published text never changes (a new wording is a new version), so a consent's
    # version proves the words the person agreed to; none of it is about a customer.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("version", String(40), nullable=False),
    Column("body", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("published_at", UTCDateTime, nullable=False),
    Column("published_by", String(128), nullable=False),
    Column("retired_at", UTCDateTime),  # no new enrollment under it from then on
    Column("retired_by", String(128)),
    UniqueConstraint("version"),
)
