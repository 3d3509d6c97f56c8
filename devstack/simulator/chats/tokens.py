"""Validation tokens: the JWTs Microsoft Graph adds to a notification collection that carries resource data,
one per distinct (app, tenant) pair among its items ("Validation tokens in the change notification",
learn.microsoft.com/graph/change-notifications-with-resource-data). Claims follow the documented example:
``aud`` = the subscribing app, ``iss`` = ``https://sts.windows.net/{tenant}/``, ``appid`` = Graph's change
notification publisher ``0bf30f3b-4a52-48df-9a82-234910c4a086``, ``tid``, ``iat``/``nbf``/``exp`` (the
example spans 29,100 s), ``aio``, ``appidacr``, ``idp``, ``uti``, ``ver`` 1.0. They are signed with the
Entra key whose JWKS is served at ``/common/discovery/keys`` and ``/common/discovery/v2.0/keys``.

Token times follow the wall clock, like every token the simulator mints: their validators compare them with it.
"""

from __future__ import annotations

import base64
import os
import time
import uuid

from ..identity import Identity

NOTIFICATION_PUBLISHER_APP_ID = "0bf30f3b-4a52-48df-9a82-234910c4a086"
VALIDATION_TOKEN_SECONDS = 29_100


def issuer(tenant_id: str) -> str:
    return f"https://sts.windows.net/{tenant_id}/"


def validation_token(
    identity: Identity,
    app_id: str,
    tenant_id: str,
    *,
    lifetime_seconds: int = VALIDATION_TOKEN_SECONDS,
    publisher_app_id: str = NOTIFICATION_PUBLISHER_APP_ID,
) -> str:
    now = int(time.time())
    return identity.entra_key.sign(
        {
            "aud": app_id,
            "iss": issuer(tenant_id),
            "iat": now,
            "nbf": now,
            "exp": now + lifetime_seconds,
            "aio": base64.b64encode(os.urandom(24)).decode(),
            "appid": publisher_app_id,
            "appidacr": "2",
            "idp": issuer(tenant_id),
            "tid": tenant_id,
            "uti": base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="),
            "ver": "1.0",
        }
    )
