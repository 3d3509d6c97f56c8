"""The durableClient binding value: the JSON the SDK's `DurableOrchestrationClient` is built from.

It carries the webhook URLs of the Durable HTTP API (`/runtime/webhooks/durabletask/...`), with the
placeholder instance id `INSTANCEID` that `create_check_status_response` replaces, and `rpcBaseUrl`, the base
the client's own calls (start, raise event, status, terminate, purge) are made against. Locally both point at
the host's HTTP server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import quote

WEBHOOK_PATH = "/runtime/webhooks/durabletask"
INSTANCE_PLACEHOLDER = "INSTANCEID"


@dataclass(frozen=True)
class WebhookUrls:
    """URLs of the Durable HTTP API of one task hub, as served at `origin` (e.g. http://127.0.0.1:7071)."""

    origin: str
    hub_name: str
    connection_name: str

    @property
    def base_url(self) -> str:
        return self.origin.rstrip("/") + WEBHOOK_PATH

    @property
    def query(self) -> str:
        return f"taskHub={quote(self.hub_name)}&connection={quote(self.connection_name)}"

    def management_urls(self, instance_id: str) -> dict[str, str]:
        """The links of the check-status response (the real extension's `HttpManagementPayload`)."""
        instance = f"{self.base_url}/instances/{quote(instance_id, safe='')}"
        query = self.query
        return {
            "id": instance_id,
            "statusQueryGetUri": f"{instance}?{query}",
            "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{query}",
            "terminatePostUri": f"{instance}/terminate?reason={{text}}&{query}",
            "rewindPostUri": f"{instance}/rewind?reason={{text}}&{query}",
            "purgeHistoryDeleteUri": f"{instance}?{query}",
            "restartPostUri": f"{instance}/restart?{query}",
            "suspendPostUri": f"{instance}/suspend?reason={{text}}&{query}",
            "resumePostUri": f"{instance}/resume?reason={{text}}&{query}",
        }

    def client_binding(self) -> str:
        """The durableClient input binding value, a JSON string."""
        prefix = f"{self.base_url}/orchestrators/{{functionName}}[/{{instanceId}}]"
        return json.dumps(
            {
                "taskHubName": self.hub_name,
                "creationUrls": {
                    "createNewInstancePostUri": f"{prefix}?{self.query}",
                    "createAndWaitOnNewInstancePostUri": (
                        f"{prefix}?timeout={{timeoutInSeconds}}&pollingInterval={{intervalInSeconds}}&{self.query}"
                    ),
                },
                "managementUrls": self.management_urls(INSTANCE_PLACEHOLDER),
                "baseUrl": self.base_url,
                "requiredQueryStringParameters": self.query,
                "rpcBaseUrl": self.base_url + "/",
                "httpBaseUrl": self.base_url,
            }
        )
