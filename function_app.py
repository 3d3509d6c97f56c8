"""The Azure Functions entry point: one DFApp, one blueprint per capability from functions/."""

import azure.durable_functions as df
import azure.functions as func

from functions import (
    callrecords,
    calls_api,
    chat,
    compliance_api,
    data_subjects,
    exports,
    graph_webhook,
    health,
    holds,
    lifecycle,
    policy,
    reconciliation,
    retention,
)
from verbatim.platform.logging import configure_logging
from verbatim.platform.settings import get_settings

configure_logging(get_settings().log_level)

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

app.register_functions(health.bp)
app.register_functions(graph_webhook.bp)
app.register_functions(callrecords.bp)
app.register_functions(chat.bp)
app.register_functions(calls_api.bp)
app.register_functions(policy.bp)
app.register_functions(lifecycle.bp)
app.register_functions(reconciliation.bp)
app.register_functions(compliance_api.bp)
app.register_functions(retention.bp)
app.register_functions(holds.bp)
app.register_functions(data_subjects.bp)
app.register_functions(exports.bp)
