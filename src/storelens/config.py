"""One settings class for the whole product.

Values come, highest first, from keyword arguments, ``STORELENS_*`` environment
variables, a ``.env`` file and ``storelens.toml`` in the working directory (or the
file named by ``STORELENS_CONFIG``). Outside ``env = "dev"`` the secret key must be
set to something real: a forgotten default would let anyone mint admin tokens.

When no secret key is given, the one ``storelens init`` wrote to ``secret_key_file``
(mode 0600) is used, so the README's ``init`` then ``serve`` never signs with the
public placeholder; ``serve`` refuses the placeholder on any non-loopback address.
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, IPvAnyNetwork, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = ["DEV_SECRET", "Settings", "get_settings", "write_secret_key_file"]

DEV_SECRET = "dev-insecure-change-me"  # noqa: S105  # the refused default, by design


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STORELENS_",
        env_file=".env",
        extra="ignore",
        toml_file=os.environ.get("STORELENS_CONFIG", "storelens.toml"),
    )

    env: Literal["dev", "test", "prod"] = "dev"
    log_exception_messages: bool = False
    """Tracebacks in the server's log keep their exceptions' messages. Off, each message
    is replaced by its length: a message can quote the value that failed (an e-mail, a
    card number), and the log is not reached by erasure unless listed in
    ``privacy_log_paths``. Turn on only where the data is not real."""
    database_url: str = "sqlite:///./storelens.db"
    secret_key: SecretStr = SecretStr(DEV_SECRET)
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    access_token_minutes: int = Field(default=60, gt=0, le=24 * 60)
    max_batch: int = Field(default=10_000, gt=0, le=100_000)
    max_body_mb: int = Field(default=64, gt=0)
    keepalive_max_requests: int = Field(default=1000, ge=0, le=100_000_000)
    """About how many requests a keep-alive connection serves before a response closes
    it, so that a client holding a few connections open for long spreads them over the
    workers again (nginx's ``keepalive_requests``; api/keepalive.py). 0 never closes."""
    redis_url: str | None = None
    login_attempts_per_minute: int = Field(default=10, gt=0)
    signed_in_cache_postgres: bool = False
    """On PostgreSQL, remember verified tokens (and a socket's key standing) and learn of
    changes to users and API keys by LISTEN/NOTIFY instead of reading the row on every
    request (about 1 ms of a warm recommendation answer's 1.2 ms). A disable, a role
    change or a key revocation then takes effect milliseconds after its commit (up to
    about 15 s if the listener's connection dies silently; at most 30 s for any remembered
    check), not on the very next request: off by default. Needs a direct connection or
    session pooling (LISTEN). SQLite always caches (its signal is exact)."""
    raw_tracking_retention_days: int = Field(default=30, gt=0, le=36500)  # as --days
    identity_resolve_every_s: float = Field(default=60.0, ge=0)
    """How often the server links new customer records to customers (incremental, with
    the last trained model); 0 turns it off. Full re-training stays a deliberate
    ``storelens cdp resolve --full``."""
    cors_origins: list[str] = []
    host: str = "127.0.0.1"
    port: int = Field(default=8000, gt=0, lt=65536)
    run_projections: bool = True  # keep read models current inside the API process
    mqtt_url: str | None = None  # e.g. mqtt://127.0.0.1:1883; serve starts the bridge when set
    mqtt_topic_prefix: str = "storelens"  # topics: {prefix}/{store}/{source}/{type}
    mqtt_client_id: str = "storelens-bridge"  # stable, so the broker keeps our session
    mqtt_ca_file: Path | None = None  # mqtts:// with a private CA (default: system CAs)
    mqtt_client_cert: Path | None = None  # PEM with the bridge's certificate and key
    mqtt_event_types: list[str] | None = None
    """Event types the MQTT bridge stores (JSON list); default: the store-level
    operational types (``pos.*``, ``order.*``, ``sensor.*``, ``staff.*``, ``vision.*``).
    Others are dead-lettered: the broker cannot tell which device may send consent."""
    mqtt_max_items: int | None = Field(default=None, gt=0, le=100_000)
    """Events one MQTT message (a JSON array) may hold; default ``max_batch``, the limit of
    one ``POST /v1/events``. A longer array is dead-lettered whole: unbounded, one
    message could make the bridge validate and commit millions of events at once."""
    alert_webhook_url: str | None = None  # staff alerts are also POSTed here when set
    # privacy: log files (globs) that erasure redacts and its verification scan searches,
    # e.g. ["/var/log/storelens/server.log*"]
    privacy_log_paths: list[str] = []

    # Secrets, tokens, sign-in limits and proxies (docs/operations.md).
    secret_key_file: Path = Path("storelens.key")
    """Read for the secret key when none is set; ``storelens init`` writes it (0600)."""
    trusted_proxies: list[IPvAnyNetwork] = []
    """Reverse proxies whose ``X-Forwarded-For`` is believed (addresses or CIDRs)."""
    login_failures_per_client: int = Field(default=50, gt=0)
    """Failed sign-ins from one address (any usernames) before it is slowed down."""
    login_backoff_max_s: int = Field(default=900, gt=0, le=24 * 3600)
    """The longest wait between attempts once a username+address is being slowed down."""

    # Input bounds (issue 17): what the API refuses per item or per request.
    event_max_future_skew_s: float = Field(default=300.0, ge=0, le=7 * 86_400)
    """How far ahead of the server clock an event's time may be; later ones are refused
    per item (devices' clocks drift a little; one event stamped 2099 must not count)."""
    event_min_date: date = date(2000, 1, 1)
    """Events stamped before this day (UTC) are refused per item."""

    # BI exports and the live demo (issue 13).
    export_max_days: int = Field(default=92, gt=0, le=3660)
    """The longest period one API download may cover (a quarter): each day is computed on
    request, so a longer one is written with ``storelens export`` instead."""
    demo_speed: float = Field(default=60.0, gt=0, le=100_000)
    """How many simulated seconds the live demo replays per real second (60: an hour a
    minute)."""

    # Staff notices (storelens.staff.notices): a member arrived, first to claim serves them.
    notice_open_s: float = Field(default=300.0, gt=0, le=86_400)
    """How long a notice waits to be claimed (and a released one again) before it expires."""
    notice_sweep_s: float = Field(default=1.0, gt=0, le=3600)
    """How often the server expires notices nobody claimed in time and withdraws them."""
    notice_audience: Literal["on_shift", "all_staff"] = "on_shift"
    """Who gets a store's notices: staff clocked in there (``staff.clock_in``/``clock_out``
    events) or every staff account connected to the store's notice socket."""
    shift_max_hours: float = Field(default=16.0, gt=0, le=48)
    """A clock-in older than this with no clock-out counts as a forgotten clock-out: the
    staff notices leave the person out, and the ops processor ends the shift (at their
    last activity) and raises ``missed-clock-out``."""
    notice_webhook_url: str | None = None  # notices are also POSTed here when set
    notice_suggestions: int = Field(default=3, ge=0, le=20)
    """Suggestions the claimer sees for the customer."""
    notice_refusals_per_hour: int = Field(default=30, ge=1, le=100_000)
    """Notices a device key may have refused (an unknown customer, recognition not
    allowed for the member) in an hour before every notice from that key is a 429 until
    the hour is up. Each refusal says something about an id (a customer or not, enrolled
    or not), so a stolen key could otherwise test ids without end; a till mistyping a
    card now and then stays far below. Counted in Redis when ``redis_url`` is set."""
    # Returning-customer recognition (issue 16, the ``faces`` extra; docs/privacy.md).
    faces_key_file: Path | None = None
    """AES-256-GCM key for face embeddings at rest (0600, written by ``storelens init`` or
    the first enrollment); default: ``storelens-faces.key`` beside ``secret_key_file``.
    ``storelens faces rotate-key`` replaces it and re-encrypts."""
    faces_detector: Literal["hog", "cnn"] = "hog"
    """dlib's HOG detector (CPU, fast) or its CNN one (slower on CPU, finds more poses)."""
    faces_upsample: int = Field(default=1, ge=0, le=2)
    """Times the detector doubles the image first: 1 finds faces down to ~40 px."""
    faces_min_detection_score: float = 0.3
    """HOG scores below this are not faces (a mission patch in a photo scores about 0.1)."""
    faces_min_face_px: int = Field(default=60, gt=0)
    """Smaller faces (box width in pixels) carry too little detail to match on."""
    faces_min_sharpness: float = Field(default=20.0, ge=0)
    """Variance of the Laplacian on the 150 px face chip; below it the face is too blurred."""
    faces_max_yaw: float = Field(default=0.35, gt=0)
    """How far the nose may sit off the eyes' midline, as a share of the eye distance."""
    faces_max_roll_deg: float = Field(default=25.0, gt=0, le=90)
    """How far the eye line may tilt from horizontal."""
    faces_match_threshold: float = Field(default=0.55, gt=0, le=2)
    """Euclidean distance between 128-d embeddings under which a frame counts as the
    member; calibrated on a validation split (README "Recognition")."""
    faces_match_k: int = Field(default=3, gt=0)
    """Frames of one anonymous track that must match the same member ..."""
    faces_match_n: int = Field(default=5, gt=0)
    """... among its last ``faces_match_n`` frames with a usable face."""
    faces_track_idle_s: float = Field(default=30.0, gt=0)
    """A track unseen this long is forgotten (its votes with it)."""
    faces_gallery_refresh_s: float = Field(default=60.0, gt=0)
    """How often an entrance reloads its members (new enrollments join within this)."""
    faces_notice_retry_s: float = Field(default=20.0, ge=0)
    """How long an edge box keeps retrying to announce an arrival (``POST /v1/notices``)
    while the server is unreachable; after that the member has walked on, so it stops."""
    faces_max_photos: int = Field(default=5, gt=0, le=20)
    """Photos per enrollment (the issue says 1 to 5)."""
    faces_max_photo_mb: float = Field(default=10.0, gt=0)
    """A larger photo is refused before it is decoded."""
    # The dashboard (storelens.web): its sign-in cookie and live page.
    web_cookie_secure: bool | None = None
    """Mark the session cookie ``Secure``: None sets it when the request came over https;
    True behind a TLS-terminating proxy that forwards plain http."""
    web_live_heartbeat_s: float = Field(default=15.0, gt=0, le=300)
    """Seconds between keep-alive comments on the Today page's event stream, so proxies
    do not close a quiet stream."""
    web_default_days: int = Field(default=7, ge=1, le=92)
    """Days the Floor and Operations pages show when no period is picked."""
    web_max_days: int = Field(default=92, ge=1, le=366)
    """The longest period a dashboard page or its JSON answers (a longer one is a 422)."""
    web_view_cache_size: int = Field(default=32, ge=0, le=1024)
    """Floor and Operations views kept for reuse until new events arrive (0: none)."""
    web_members_page_size: int = Field(default=50, ge=1, le=1000)
    """Customers per page on the Customers page's segment member lists."""
    web_clv_bins: int = Field(default=20, ge=2, le=200)
    """Bars of the Customers page's lifetime-value histogram (up to the 99th percentile;
    the top 1 % is one more bar, so a few big spenders do not flatten the rest)."""
    # Predictive analytics (issue 14).
    predict_rescore_every_s: float = Field(default=0.0, ge=0)
    """How often the server re-scores every consenting customer (lifetime value, churn
    risk, segments); 0 (the default) leaves it to ``storelens predict score``."""
    predict_validation_tolerance_pct: float = Field(default=5.0, gt=0, le=100)
    """A challenger to BG/NBD must predict the validation window's total within this
    many percent to be chosen; among those, the lowest per-customer error wins."""
    predict_clv_months: int = Field(default=12, gt=0, le=120)
    """Horizon of the stored lifetime value, in months."""
    predict_monthly_discount: float = Field(default=0.01, ge=0, lt=1)
    """Monthly discount rate of the stored lifetime value."""
    predict_churn_window_days: int = Field(default=90, gt=0, le=730)
    """Churned means no purchase in this many days after the cut-off (the classifier's
    outcome window)."""
    predict_segment_seeds: int = Field(default=5, ge=2, le=50)
    """KMeans seeds compared for the stability (adjusted Rand index) of the clustering."""
    predict_high_churn_risk: float = Field(default=0.5, gt=0, lt=1)
    """Churn risk above which a customer counts as "at high risk" in segment overviews."""
    # -- recommendations (storelens.recommend) --
    recommend_candidate_store: Literal["memory", "redis"] = "memory"
    """Where precomputed candidate lists live: this process's memory (one worker) or Redis
    (``redis_url``; several workers share it). Redis down: answers are computed from the
    database instead."""
    recommend_max_k: int = Field(default=50, gt=0, le=500)
    recommend_history_days: int = Field(default=60, gt=0)
    """The window explanations count purchases in ("6 times in the last 2 months")."""
    recommend_half_life_days: float = Field(default=30.0, gt=0)
    """Time decay of repeat purchases: a purchase this old counts half."""
    recommend_recent_days: float = Field(default=1.0, ge=0)
    """Items bought within this many days are not suggested again, unless a staple."""
    recommend_staple_orders: int = Field(default=3, gt=0)
    """Bought in at least this many orders: a staple, suggested even if bought recently."""
    recommend_category_cap: int = Field(default=3, gt=0)
    """At most this many suggestions from one product category."""
    recommend_popularity_days: int = Field(default=28, gt=0)
    """Store popularity (per daypart) counts orders of this many days."""
    recommend_copurchase_days: int = Field(default=90, gt=0)
    """Co-purchase counts ("people who buy X often add this") cover this many days."""
    recommend_anchor_items: int = Field(default=5, gt=0)
    """A customer's top items whose co-purchases become candidates."""
    recommend_zone_boost: float = Field(default=0.5, ge=0)
    """Ranking bonus (relative) for items placed in the zone the customer stands in."""
    recommend_blend_top_n: int = Field(default=50, gt=0, le=500)
    """Items per customer whose learned-blend score ``recommend train`` keeps for serving."""
    recommend_stock_max_out: int = Field(default=20_000, gt=0)
    """At most this many items one store may have marked out of stock: every worker
    reloads the store's list each second (``PUT /v1/stores/{id}/stock`` refuses more)."""
    recommend_cache_ttl_s: float = Field(default=600.0, gt=0)
    recommend_follow_s: float = Field(default=0.5, gt=0, le=60)
    """With candidates in memory, how often each process reads the orders, consent
    decisions and erasures other processes wrote (how long a withdrawal can lag)."""
    recommend_redis_timeout_s: float = Field(default=0.05, gt=0)
    """A Redis slower than this counts as down for that request (answer from the database)."""
    recommend_redis_copies: bool = True
    """With candidates in Redis, each worker serves its own copy of an entry it read
    until any process changes it (pub/sub news; storelens.recommend.near_copies)."""
    recommend_impressions_every_s: float = Field(default=1.0, gt=0, le=60)
    """How long shown lists wait in memory before one write stores them, in customer
    order (a longer wait makes bigger, cheaper writes: see storelens.recommend.
    impression_log). A crash loses at most this much of the log; a shutdown writes it."""
    recommend_impressions_keep_days: int = Field(default=90, gt=0, le=36500)
    """Shown lists older than this are deleted (hourly on a server running projections,
    or ``storelens retention``): a named customer's history of what they were shown."""
    recommend_impressions_max_queued: int = Field(default=50_000, gt=0)
    """Shown lists one process may hold unwritten (about 1 KB each); past it a request
    writes its own, and half of it wakes the writer early."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            TomlConfigSettingsSource(settings_cls),
            file_secret_settings,
        )

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        if self.secret_key.get_secret_value() == DEV_SECRET and self.secret_key_file.is_file():
            self.secret_key = SecretStr(self.secret_key_file.read_text().strip())
        secret = self.secret_key.get_secret_value()
        if self.env != "dev" and (secret == DEV_SECRET or len(secret) < 32):
            raise ValueError(
                "STORELENS_SECRET_KEY must be set to a random value of at least 32 characters "
                f"when env is {self.env!r}; generate one with: "
                "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        if self.faces_match_k > self.faces_match_n:
            raise ValueError("faces_match_k must not exceed faces_match_n")
        return self

    @property
    def max_body_bytes(self) -> int:
        return self.max_body_mb * 1024 * 1024

    @property
    def earliest_event_time(self) -> datetime:
        return datetime.combine(self.event_min_date, datetime.min.time(), tzinfo=UTC)

    @property
    def event_max_future(self) -> timedelta:
        return timedelta(seconds=self.event_max_future_skew_s)

    @property
    def faces_key_path(self) -> Path:
        return self.faces_key_file or self.secret_key_file.with_name("storelens-faces.key")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def placeholder_secret(self) -> bool:
        return self.secret_key.get_secret_value() == DEV_SECRET


def write_secret_key_file(path: Path) -> bool:
    """Create ``path`` with a new random secret, readable by its owner only.

    Returns False (and changes nothing) when the file already exists: rotating the
    secret signs everyone out, so it is a deliberate act, not a side effect of init."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(48) + "\n")
    return True


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once; tests build their own ``Settings`` instead."""
    return Settings()
