"""Call a facility's HTTP API from inside its own container (no gateway needed)."""

import json

# Runs inside the container: prints [status, json-or-null] for one request to the local app.
_CLIENT = """
import http.client, json, socket, sys
method, path, token, body = sys.argv[1:5]
headers = {"Content-Type": "application/json"}
if token:
    headers["Authorization"] = "Bearer " + token

class Unix(http.client.HTTPConnection):  # the app listens only on its socket: no network
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(10)
        self.sock.connect("/run/medcell/app.sock")

connection = Unix("localhost")
connection.request(method, path, body=body.encode() if body else None, headers=headers)
response = connection.getresponse()
raw = response.read()
data = json.loads(raw or b"null") if response.status < 300 else None
print(json.dumps([response.status, data]))
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
