"""The platform's tunable rules, with Microsoft's documented values as defaults. ``PATCH /sim/config``
changes them at run time (for example a shorter webhook timeout so a slow-endpoint test needs no 3 s
responses); the rules themselves stay enforced."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class SimConfig(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", validate_assignment=True)

    # calls (graph-teams.md 1.4, 1.8)
    answer_timeout_seconds: float = Field(default=5.0, gt=0, le=120, description="PBR answer window")
    keep_alive_timeout_minutes: float = Field(default=45.0, gt=0, le=24 * 60)
    bot_notification_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # a `fast` call waits this long (wall time) for a recorder leg still answering or reporting its recording status
    fast_pace_start_wait_seconds: float = Field(default=2.0, ge=0, le=120)
    # call records (2.1, 2.4)
    call_record_delay_seconds: float = Field(default=5.0, ge=0, le=7 * 86400)
    call_record_retention_days: float = Field(default=30.0, gt=0, le=3650)
    # subscriptions and delivery (3.1-3.5)
    subscription_max_minutes: float = Field(default=4230.0, gt=0)
    subscription_min_minutes: float = Field(default=45.0, ge=0)
    subscription_quota: int = Field(default=100, ge=1)
    validation_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_timeout_seconds: float = Field(default=3.0, gt=0, le=60)
    slow_threshold_seconds: float = Field(default=2.9, gt=0, le=60)
    slow_sample_size: int = Field(default=100, ge=1)
    throttle_ratio: float = Field(default=0.10, gt=0, le=1)
    drop_ratio: float = Field(default=0.15, gt=0, le=1)
    slow_window_minutes: float = Field(default=10.0, gt=0)
    throttled_delay_minutes: float = Field(default=10.0, ge=0)
    retry_schedule_seconds: list[float] = Field(
        default_factory=lambda: [15.0, 30.0, 60.0, 120.0, 240.0, 480.0, 600.0], min_length=1
    )
    retry_max_hours: float = Field(default=4.0, gt=0, le=48)
    reauthorization_lead_minutes: float = Field(default=60.0, ge=0)
    max_notifications_per_delivery: int = Field(default=100, ge=1, le=1000)
    # chats (chats/ package): chatMessage subscriptions last up to 4,320 minutes; the export API allows
    # 200 requests per second per app and tenant (export-teams-content)
    chat_subscription_max_minutes: float = Field(default=4320.0, gt=0)
    export_requests_per_second: float = Field(default=200.0, gt=0)
    # sign-in (v2-oauth2-auth-code-flow: codes "expire after about 10 minutes"; refresh tokens sent to a `spa`
    # redirect URI expire after 24 hours, and refreshed ones keep that expiry; access tokens: expires_in 3599)
    authorization_code_minutes: float = Field(default=10.0, gt=0, le=60)
    spa_refresh_token_hours: float = Field(default=24.0, gt=0, le=24 * 90)
    user_access_token_seconds: int = Field(default=3599, ge=1, le=86400)
