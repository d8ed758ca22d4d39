"""Fixtures: a facility app over temporary data and key directories, with a clock tests control."""

from pathlib import Path
from urllib.parse import urljoin

import pytest
from flask.testing import FlaskClient
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound

from services.facility import create_app
from services.facility.api.openapi import spec
from services.facility.core import accounts as auth
from services.facility.core.config import Config
from tests.clock import FakeClock

DOC_URL = "http://localhost/api/v1/openapi.json"  # where the test client's app serves it
ADMIN = ("admin", "correct horse battery")
STAFF = ("nurse", "another long secret")


def make_config(
    root: Path, facility: str = "alpha", retention: int = 7 * 86400, **options
) -> Config:
    settings = {"facility_name": facility.title(), "scheduler": False, **options}
    return Config(
        facility=facility,
        data_dir=root / "data",
        key_dir=root / "keys",
        retention=retention,
        **settings,
    )


def facility_app(
    root: Path,
    clock: FakeClock,
    facility: str = "alpha",
    accounts: tuple[tuple[str, str], tuple[str, str]] = (ADMIN, STAFF),
    **options,
):
    """The facility app over root's data and key folders, on the test's clock, for the test
    client; `accounts`: the logins of its admin and of a staff member, made on first open.
    Options go to its Config."""
    app = create_app(
        {"MEDCELL": make_config(root, facility, **options), "CLOCK": clock, "TESTING": True}
    )
    conn = app.extensions["medcell"].store.conn()
    if not conn.execute("SELECT 1 FROM staff").fetchone():
        admin, staff = accounts
        auth.create_staff(conn, *admin, "admin", clock())
        auth.create_staff(conn, *staff, "staff", clock())
    return app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock.micros()


@pytest.fixture
def make_app(tmp_path, clock):
    """Build a facility app; each facility gets its own directories under tmp_path."""

    def factory(facility: str = "alpha", **kwargs):
        return facility_app(tmp_path / facility, clock, facility, **kwargs)

    return factory


@pytest.fixture
def app(make_app):
    app = make_app()
    yield app
    app.extensions["medcell"].store.close()


@pytest.fixture
def mail_app(make_app):
    """A facility whose installation has SMTP set up (MEDCELL_MAIL=on)."""
    app = make_app(mail=True)
    yield app
    app.extensions["medcell"].store.close()


class SentRequest(WerkzeugOpenAPIRequest):
    """The request of a response: its body was read by the app, and a response check needs none."""

    @property
    def body(self) -> bytes | None:
        return None


class DocumentedClient(FlaskClient):
    """A test client that checks every API response against the app's OpenAPI document.

    So the document cannot drift from what the app returns: a status, header or body that the
    document does not describe fails the test that caused it.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        doc = spec(self.application.extensions["medcell"].config)
        # The servers are relative to the document's own address; resolved as a client would.
        for server in doc["servers"]:
            server["url"] = urljoin(f"{DOC_URL}", server["url"]).rstrip("/")
        self.openapi = OpenAPI.from_dict(doc)

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        request = response.request
        # A test that reads a stream itself (buffered=False) checks what the stream does instead.
        streamed = kwargs.get("buffered") is False
        if (request.path.startswith("/api/") or request.path == "/healthz") and not streamed:
            response.make_sequence()  # a streamed download is read once, for both
            try:
                self.openapi.validate_response(
                    SentRequest(request), WerkzeugOpenAPIResponse(response)
                )
            except (PathNotFound, OperationNotFound):
                # No such operation: the app must then refuse it, like any unknown path.
                assert response.status_code in (404, 405), (request.method, request.path)
        return response


@pytest.fixture
def client(app):
    app.test_client_class = DocumentedClient
    return app.test_client()


def login(client, username: str, password: str) -> dict:
    response = client.post("/api/v1/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.json
    return {"Authorization": f"Bearer {response.json['token']}"}


@pytest.fixture
def admin_auth(client) -> dict:
    return login(client, *ADMIN)


@pytest.fixture
def staff_auth(client) -> dict:
    return login(client, *STAFF)


@pytest.fixture
def conversation(client, staff_auth) -> dict:
    """A conversation with its patient's auth header under 'patient'."""
    response = client.post(
        "/api/v1/conversations", json={"title": "Knee follow-up"}, headers=staff_auth
    )
    assert response.status_code == 201
    body = response.json
    return {**body, "patient": {"Authorization": f"Bearer {body['patient_token']}"}}
