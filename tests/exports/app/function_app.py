"""The exports blueprint alone, as the local Functions host runs it in the export tests."""

import azure.durable_functions as df
import azure.functions as func

from functions import exports

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(exports.bp)
