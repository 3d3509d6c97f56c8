"""An app whose functions use the fake extension's trigger and binding types (see fake_extension.py)."""

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.generic_trigger(arg_name="payload", type="echoTrigger")
@app.generic_input_binding(arg_name="greeting", type="greeting")
def echo(payload: str, greeting: str) -> dict[str, str]:
    return {"greeting": greeting, "payload": payload}


@app.generic_trigger(arg_name="payload", type="echoTrigger")
async def echo_async(payload: str, context: func.Context) -> dict[str, str]:
    return {"payload": payload, "function": context.function_name, "invocation_id": context.invocation_id}


@app.route(route="greet", methods=["GET"])
@app.generic_input_binding(arg_name="greeting", type="greeting")
def greet(req: func.HttpRequest, greeting: str) -> func.HttpResponse:
    return func.HttpResponse(greeting)
