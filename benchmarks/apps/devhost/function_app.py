"""The trivial HTTP functions benchmarks/devhost_http.py drives through the local host."""

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="ping-async", methods=["GET"])
async def ping_async(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("pong")


@app.route(route="ping-sync", methods=["GET"])
def ping_sync(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("pong")
