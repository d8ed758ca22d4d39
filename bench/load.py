"""Load through the gateway: 20 facilities x 64 clients x 60 s of mixed reads, writes and uploads,
then a check that every acknowledged write is stored, and nginx's and the facilities' memory.

Host processes, as in the gateway benchmark: the real facility app under gunicorn with its
production config on the unix socket the gateway routes to, one per facility, and the real
`python -m gateway serve` (Debian's nginx, TLS on loopback) in front of them. wrk runs one thread
per facility with 64 keep-alive connections each; every connection cycles through list GETs of a
20-message conversation, message POSTs into another one, a 64 KiB attachment download and a
64 KiB attachment upload (so 3 reads, 4 writes and 1 upload in every 8 requests). The Lua script
records the id of every `201` answer; afterwards the benchmark lists each facility's conversation
through the gateway and checks that every acknowledged message and attachment is there, and
nothing else. Memory (PSS of nginx's master and workers, and of each facility's gunicorn
processes) is sampled every 5 s, so start, peak and end can be compared.

`MEDCELL_BENCH_LOAD=facilities,clients,seconds` changes the size (default `20,64,60`).
Bounded: wrk stops after its time, every process is stopped and the directory removed at the end.
"""

import json
import os
import shutil
import tempfile
import threading
from pathlib import Path

from bench.common import descendants, ensure_nginx, ensure_wrk, memory, table, wrk
from bench.gateway import admins
from bench.gateway_setup import Facility, Gateway
from devsupport import localhost

DEFAULT_SIZE = (20, 64, 60)
SAMPLE_SECONDS = 5
WARM_SAMPLE = 2  # the sample 10 s into the run
BOUNDARY = "medcellbenchboundary"
MESSAGE = json.dumps({"body": "Kontrolltermin am Dienstag um 9:30 passt gut. " * 6})
UPLOAD_CONTENT = "%PDF-1.4\n" + "A" * (64 * 1024)
UPLOAD = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="befund.pdf"\r\n'
    f"Content-Type: application/pdf\r\n\r\n{UPLOAD_CONTENT}\r\n--{BOUNDARY}--\r\n"
)

LUA = """
local facilities = {facilities}
local message = [==[{message}]==]
local upload = [==[{upload}]==]
local output = "{output}"
local threads = {{}}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("index", counter)
  table.insert(threads, thread)
end

function init(args)
  local f = facilities[index]
  -- Each facility at its own origin: one wrk connection address, each thread its Host.
  local auth = {{["Authorization"] = "Bearer " .. f.token, ["Host"] = f.host}}
  local json = {{["Authorization"] = auth.Authorization, ["Host"] = f.host,
                ["Content-Type"] = "application/json"}}
  local form = {{["Authorization"] = auth.Authorization, ["Host"] = f.host,
                ["Content-Type"] = "multipart/form-data; boundary={boundary}"}}
  local list = wrk.format("GET", f.list, auth)
  local post = wrk.format("POST", f.post, json, message)
  cycle = {{list, post, list, post, wrk.format("GET", f.download, auth), post, post,
           wrk.format("POST", f.upload, form, upload)}}
  sent, bad, messages, uploads, statuses = 0, 0, {{}}, {{}}, {{}}
end

function request()
  sent = sent + 1
  return cycle[(sent - 1) % #cycle + 1]
end

function response(status, headers, body)
  if status == 201 then
    local id = body:match('"id"%s*:%s*"([^"]+)"')
    if body:find('"filename"', 1, true) then
      uploads[#uploads + 1] = id
    else
      messages[#messages + 1] = id
    end
  elseif status < 200 or status > 299 then
    bad = bad + 1
    statuses[tostring(status)] = (statuses[tostring(status)] or 0) + 1
  end
end

local function quoted(list)
  local out = {{}}
  for i, id in ipairs(list) do out[i] = '"' .. id .. '"' end
  return "[" .. table.concat(out, ",") .. "]"
end

function done(summary, latency, requests)
  local file = io.open(output, "w")
  for _, t in ipairs(threads) do
    local codes = {{}}
    for code, n in pairs(t:get("statuses")) do codes[#codes + 1] = '"' .. code .. '":' .. n end
    file:write(string.format('{{"index":%d,"bad":%d,"statuses":{{%s}},"messages":%s,"uploads":%s}}\\n',
      t:get("index"), t:get("bad"), table.concat(codes, ","), quoted(t:get("messages")),
      quoted(t:get("uploads"))))
  end
  file:close()
end
"""


def size() -> tuple[int, int, int]:
    raw = os.environ.get("MEDCELL_BENCH_LOAD")
    if not raw:
        return DEFAULT_SIZE
    facilities, clients, seconds = (int(part) for part in raw.split(","))
    return facilities, clients, seconds


class Target:
    """One facility's side of the run: its token, the conversations read and written."""

    def __init__(self, gw: Gateway, facility: Facility, admin: dict):
        self.facility = facility
        self.host = f"{facility.slug}.localhost:{gw.port}"
        self.base = f"{gw.origin(facility.slug)}/api/v1"
        self.session = localhost.session(verify=gw.cert)
        credentials = {"username": admin["username"], "password": admin["password"]}
        token = self.session.post(f"{self.base}/login", json=credentials).json()["token"]
        self.auth = {"Authorization": f"Bearer {token}"}
        self.token = token
        self.listed = self._conversation()
        for _ in range(20):
            self._post(f"/conversations/{self.listed}/messages", json=json.loads(MESSAGE))
        self.written = self._conversation()
        sample = ("scan.pdf", UPLOAD_CONTENT.encode(), "application/pdf")
        self.download = self._post(
            f"/conversations/{self.listed}/attachments", files={"file": sample}
        )["id"]

    def _conversation(self) -> str:
        return self._post("/conversations", json={})["id"]

    def _post(self, path: str, **kwargs) -> dict:
        response = self.session.post(f"{self.base}{path}", headers=self.auth, timeout=60, **kwargs)
        response.raise_for_status()
        return response.json()

    def lua(self) -> str:
        prefix = self.base.split("://", 1)[1].split("/", 1)[1]
        return (
            f'{{token="{self.token}", host="{self.host}",'
            f' list="/{prefix}/conversations/{self.listed}/messages",'
            f' post="/{prefix}/conversations/{self.written}/messages",'
            f' upload="/{prefix}/conversations/{self.written}/attachments",'
            f' download="/{prefix}/attachments/{self.download}"}}'
        )

    def stored(self) -> tuple[set[str], set[str], int]:
        """Message ids, attachment ids and the number of messages in the written conversation."""
        url = f"{self.base}/conversations/{self.written}/messages"
        messages = self.session.get(url, headers=self.auth, timeout=120).json()["messages"]
        attachments = {a["id"] for m in messages for a in m["attachments"]}
        return {m["id"] for m in messages}, attachments, len(messages)


class Sampler:
    """PSS of nginx and of every facility's processes, every few seconds on a thread."""

    def __init__(self, nginx: list[int], facilities: list[Facility]):
        self.nginx, self.facilities = nginx, facilities
        self.samples: list[tuple[float, list[float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        per_facility = [memory(descendants(f.proc.pid))["pss_mib"] for f in self.facilities]
        self.samples.append((memory(self.nginx)["pss_mib"], per_facility))

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.sample()

    def __enter__(self) -> "Sampler":
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def report(self) -> None:
        rows = []
        for name, pick in (
            ("nginx (master + workers)", lambda s: s[0]),
            ("facilities, all together", lambda s: sum(s[1])),
            ("largest facility", lambda s: max(s[1])),
        ):
            values = [pick(s) for s in self.samples]
            # Caches fill in the first seconds: flat means no growth from then to the end.
            warm = values[min(WARM_SAMPLE, len(values) - 1)]
            rows.append((name, f"{values[0]:.1f}", f"{warm:.1f}", f"{max(values):.1f}",
                         f"{values[-1]:.1f}", f"{values[-1] - warm:+.1f}"))  # fmt: skip
        print(f"\n  memory, PSS in MiB ({len(self.samples)} samples, every {SAMPLE_SECONDS} s):")
        warm_at = f"{WARM_SAMPLE * SAMPLE_SECONDS} s in"
        table(rows, ("processes", "before", warm_at, "peak", "end", f"end - {warm_at}"))


def verify(targets: list[Target], results: list[dict]) -> dict:
    """Compare what the clients were told (201 and an id) with what each facility stores."""
    totals = {"messages": 0, "uploads": 0, "lost": 0, "unacknowledged": 0, "bad": 0}
    statuses: dict[str, int] = {}
    for result in sorted(results, key=lambda r: r["index"]):
        target = targets[result["index"] - 1]
        messages, attachments, count = target.stored()
        acked_messages, acked_uploads = set(result["messages"]), set(result["uploads"])
        lost = len(acked_messages - messages) + len(acked_uploads - attachments)
        # Every stored message was acknowledged: an upload is a message holding its attachment.
        extra = count - len(acked_messages) - len(acked_uploads)
        totals["messages"] += len(acked_messages)
        totals["uploads"] += len(acked_uploads)
        totals["lost"] += lost
        totals["unacknowledged"] += extra
        totals["bad"] += result["bad"]
        for code, n in result["statuses"].items():
            statuses[code] = statuses.get(code, 0) + n
    totals["statuses"] = statuses
    return totals


def run(gw: Gateway, facilities: list[Facility], accounts: list[dict]) -> None:
    n, clients, seconds = size()
    targets = [Target(gw, f, a) for f, a in zip(facilities, accounts, strict=True)]
    output = Path(tempfile.mkstemp(prefix="mcload-", suffix=".jsonl")[1])
    script = LUA.format(
        facilities="{" + ",".join(t.lua() for t in targets) + "}", message=MESSAGE,
        upload=UPLOAD, output=output, boundary=BOUNDARY,
    )  # fmt: skip
    print(f"  {n} facilities x {clients} clients x {seconds} s through the gateway ...", flush=True)
    try:
        with Sampler(gw.nginx(), facilities) as sampler:
            r = wrk(f"{gw.url}/", script=script, threads=n, connections=n * clients,
                    seconds=seconds, timeout=30)  # fmt: skip
        results = [json.loads(line) for line in output.read_text().splitlines()]
    finally:
        output.unlink(missing_ok=True)
    if len(results) != n:
        raise SystemExit(f"Error: wrk reported {len(results)} of {n} threads")
    totals = verify(targets, results)
    # wrk ends by closing its connections: a write then in flight may be stored unanswered, one
    # per connection at most. More than that, or any stored write never sent, is an error.
    cut_off = totals["unacknowledged"]
    wrong = 0 if 0 <= cut_off <= n * clients else abs(cut_off)
    errors = totals["bad"] + r["socket_errors"] + totals["lost"] + wrong
    refused = f"{totals['bad']} {totals['statuses']}" if totals["bad"] else "0"
    print(
        f"  {r['requests']:,} requests in {seconds} s: {r['rps']:,.0f} requests/s in all,"
        f" p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms (30 s client timeout)\n"
        f"  acknowledged (201): {totals['messages']:,} messages and {totals['uploads']:,}"
        f" uploads of 64 KiB; afterwards stored: all but {totals['lost']} of them,"
        f" {cut_off} more stored unanswered (in flight when wrk closed its {n * clients}"
        f" connections)\n"
        f"  answers other than 2xx: {refused}; socket errors (connect/read/write/timeout):"
        f" {r['socket_errors']}\n"
        f"  errors in all: {errors} (target 0); load average {os.getloadavg()[0]:.1f}"
    )
    sampler.report()


def main() -> None:
    nginx, _ = ensure_nginx(), ensure_wrk()
    n, _, _ = size()
    base = Path(tempfile.mkdtemp(prefix="mcld-"))  # short: unix socket paths are limited
    gw = Gateway(base, nginx)
    facilities = [Facility(base, gw.run, f"load{i:02d}") for i in range(n)]
    try:
        print(f"  starting {n} facility apps and the gateway ...", flush=True)
        accounts = admins(facilities)
        for f in facilities:
            f.start()
        for f in facilities:
            f.wait()
        gw.route([f.slug for f in facilities])
        print(f"  nginx workers: {len(gw.nginx()) - 1}", flush=True)
        run(gw, facilities, accounts)
    finally:
        gw.stop()
        for f in facilities:
            f.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
