"""Calls per instance as an Azure Monitor custom metric, for the scale set's autoscale rules.

CPU says little about a recorder: a call costs little CPU but holds the instance for hours, and the media platform
limits concurrent calls long before the CPU is busy. So each instance samples how many calls it holds and, once a
minute, posts the minute's min/max/sum/count for the metric `ActiveCalls` (namespace `Verbatim Recorder`, dimension
`Instance`) against the scale set's resource id, as "Ingest custom metrics for an Azure resource using the REST API"
describes (https://learn.microsoft.com/azure/azure-monitor/metrics/metrics-store-custom-rest-api): POST
`https://<region>.monitoring.azure.com<resource id>/metrics`, a token for `https://monitoring.azure.com/` (trailing
slash), the Monitoring Metrics Publisher role on the scale set (infra/modules/recorder.bicep). The autoscale rules
average the metric over the scale set: Sum/Count across every instance's samples, i.e. calls per instance.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from recorder_vm.scale_in import TokenSource

log = logging.getLogger(__name__)

NAMESPACE = "Verbatim Recorder"
METRIC = "ActiveCalls"
DIMENSION = "Instance"
# The resource is `https://monitoring.azure.com/` with its trailing slash; as a v2 scope that is `<resource>/.default`,
# hence the double slash (a managed identity asks for the resource without `/.default`, keeping the slash).
MONITORING_SCOPE = "https://monitoring.azure.com//.default"


class CallMetricsPublisher:
    def __init__(
        self,
        *,
        endpoint: str,
        resource_id: str,
        instance: str,
        credential: TokenSource,
        http: httpx.AsyncClient,
        active_calls: Callable[[], int],
        sample_seconds: float = 10.0,
        publish_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._url = f"{endpoint.rstrip('/')}{resource_id}/metrics"
        self._instance = instance
        self._credential = credential
        self._http = http
        self._active_calls = active_calls
        self._sample_seconds = sample_seconds
        self._publish_seconds = publish_seconds
        self._clock = clock
        self._samples: list[int] = []
        self.published = 0

    def sample(self) -> None:
        self._samples.append(self._active_calls())

    def payload(self) -> dict[str, Any] | None:
        """The minute's aggregate, as the REST API takes it; None before the first sample."""
        if not self._samples:
            return None
        samples = self._samples
        return {
            "time": datetime.fromtimestamp(self._clock(), UTC).isoformat().replace("+00:00", "Z"),
            "data": {
                "baseData": {
                    "metric": METRIC,
                    "namespace": NAMESPACE,
                    "dimNames": [DIMENSION],
                    "series": [
                        {
                            "dimValues": [self._instance],
                            "min": min(samples),
                            "max": max(samples),
                            "sum": sum(samples),
                            "count": len(samples),
                        }
                    ],
                }
            },
        }

    async def publish(self) -> bool:
        """Post the samples taken since the last post; kept for the next try if Azure Monitor refuses them."""
        body = self.payload()
        if body is None:
            return False
        try:
            token = await asyncio.to_thread(self._credential.get_token, MONITORING_SCOPE)
            response = await self._http.post(
                self._url,
                json=body,
                headers={"Authorization": f"Bearer {getattr(token, 'token', '')}"},
                timeout=30.0,
            )
            response.raise_for_status()
        except Exception as error:  # Azure Monitor or the identity endpoint: the next minute tries again
            log.warning("calls metric not published", extra={"error": type(error).__name__})
            # Azure Monitor takes data points up to 20 minutes old; keep at most that many minutes of samples.
            keep = int(20 * self._publish_seconds / self._sample_seconds)
            self._samples = self._samples[-keep:]
            return False
        self._samples = []
        self.published += 1
        return True

    async def run(self) -> None:
        next_publish = self._clock() + self._publish_seconds
        while True:
            self.sample()
            if self._clock() >= next_publish:
                await self.publish()
                next_publish += self._publish_seconds
            await asyncio.sleep(self._sample_seconds)
