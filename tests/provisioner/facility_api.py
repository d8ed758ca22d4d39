"""Call a facility's HTTP API from inside its own container (no gateway needed)."""

import json

# Runs inside the container: prints [status, json-or-null] for one request to the local app.
_CLIENT = """
import json, sys, urllib.error, urllib.request
method, path, token, body = sys.argv[1:5]
headers = {"Content-Type": "application/json"}
if token:
    headers["Authorization"] = "Bearer " + token
request = urllib.request.Request("http://127.0.0.1:8000" + path, method=method,
                                 data=body.encode() if body else None, headers=headers)
try:
    with urllib.request.urlopen(request, timeout=10) as response:
        print(json.dumps([response.status, json.loads(response.read() or b"null")]))
except urllib.error.HTTPError as error:
    print(json.dumps([error.code, None]))
"""


def call(client, container: str, method: str, path: str, token: str = "", body=None):
    """(status, JSON body) of one API request made inside `container`."""
    payload = json.dumps(body) if body is not None else ""
    result = client.containers.get(container).exec_run(
        ["python", "-c", _CLIENT, method, path, token, payload]
    )
    assert result.exit_code == 0, result.output.decode()
    status, data = json.loads(result.output.decode().strip().splitlines()[-1])
    return status, data


def login(client, container: str, username: str, password: str) -> str:
    status, data = call(
        client,
        container,
        "POST",
        "/api/v1/login",
        body={"username": username, "password": password},
    )
    assert status == 200, status
    return data["token"]
