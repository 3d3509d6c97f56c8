"""The lifecycle blueprint alone, as the local Functions host runs it in the orchestration tests."""

import azure.durable_functions as df
import azure.functions as func

from functions import lifecycle

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(lifecycle.bp)
