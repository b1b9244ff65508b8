"""CORS in a real browser: a page served from another origin calls the API with fetch()
(JSON body and an Authorization header, so Chromium sends a preflight first). Allowed
with --cors-origin naming that origin, refused by the browser without it; and
GET /v1/models/{id}."""
import http.server
import threading

import httpx
import pytest

from cdp import Browser, find_chromium
from conftest import start_server

FETCH = """(async () => {
  try {
    const r = await fetch('%s/v1/chat/completions', {method: 'POST',
      headers: {'Content-Type': 'application/json', 'Authorization': 'Bearer k'},
      body: JSON.stringify({model: 'm', max_tokens: 3, temperature: 0,
                            messages: [{role: 'user', content: 'Hi'}]})});
    const j = await r.json();
    return 'ok:' + j.choices[0].finish_reason;
  } catch (e) { return 'blocked:' + e; }
})()"""


@pytest.fixture(scope="module")
def page_origin():
    """An empty page on another port: a different origin from the API's."""
    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<!doctype html><title>app</title>")

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def fetch_from(origin, api):
    if find_chromium() is None:
        pytest.skip("NO BROWSER: chromium is not installed (apt-get install chromium); CORS was NOT tested")
    b = Browser(origin + "/")
    try:
        # The browser starts on about:blank; fetch only once the page's own origin is loaded.
        b.wait_for(f"location.origin === '{origin}' && document.readyState === 'complete'")
        return b.eval(FETCH % api)
    finally:
        b.close()


def test_allowed_origin_passes_the_preflight(page_origin):
    s = start_server("--cors-origin", "http://elsewhere.example," + page_origin, "--api-key", "k").wait_ready()
    try:
        assert fetch_from(page_origin, s.url) == "ok:length"
    finally:
        assert s.stop() == 0


def test_other_origins_are_refused_by_the_browser(page_origin, server):
    # The session server runs without --cors-origin.
    assert fetch_from(page_origin, server.url).startswith("blocked:")
    r = httpx.options(server.url + "/v1/chat/completions", headers={"Origin": page_origin})
    assert r.status_code == 204 and "access-control-allow-origin" not in r.headers
    assert r.headers["allow"] == "POST, OPTIONS"


def test_model_by_id(server):
    listed = httpx.get(server.url + "/v1/models").json()["data"][0]
    one = httpx.get(server.url + "/v1/models/" + listed["id"])
    assert one.status_code == 200 and one.json() == listed
    missing = httpx.get(server.url + "/v1/models/gpt-4o")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
