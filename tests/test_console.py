"""The web console, served by the app: its files and headers over HTTP, and what a user does
with it in Debian's Chromium (Playwright, never a downloaded browser) against the app on moto.

Every browser test fails if a dialog opens (an injected script ran), if the page logs an error
(a Content-Security-Policy violation is one), or if the page asks anything of another origin.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from nshub import Client
from nshub.cli import main
from tests.executor_packages import executor_folder

CHROMIUM = "/usr/bin/chromium"
HOSTILE = "<img src=x onerror=alert(1)>"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 375, "height": 740}
CONSOLE_FILES = ("main.js", "api.js", "dom.js", "style.css", "icon.svg")


# ------------------------------------------------------------------ over HTTP


def test_the_page_and_its_files_are_served_with_a_strict_policy(api):
    page = api.get("/")
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = page.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["X-Frame-Options"] == "DENY"

    # relative asset URLs only (they must resolve under API Gateway's stage prefix), no inline
    # script or style
    assert re.findall(r'(?:src|href)="([^"#]+)"', page.text) == [
        "console/icon.svg", "console/style.css", "console/main.js", "console/icon.svg"]
    assert "<style" not in page.text and "style=" not in page.text
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)

    total = len(page.content)
    types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
             ".svg": "image/svg+xml"}
    for name in CONSOLE_FILES:
        asset = api.get(f"/console/{name}")
        assert asset.status_code == 200, name
        assert asset.headers["Content-Type"] == types[Path(name).suffix]
        assert asset.headers["X-Content-Type-Options"] == "nosniff"
        assert asset.headers["Content-Security-Policy"] == csp
        total += len(asset.content)
    # everything the page loads, and every file the console has, under 150 KB
    shipped = Path(__file__).resolve().parent.parent / "chalicelib" / "console"
    assert sorted(p.name for p in shipped.iterdir()) == sorted((*CONSOLE_FILES, "index.html"))
    assert total < 150 * 1000


@pytest.mark.parametrize("name", ["index.html", "nope.js", "..%2Fapp.py", "main.js.map", "MAIN.JS"])
def test_only_the_console_files_are_served(api, name):
    r = api.get(f"/console/{name}")
    assert r.status_code == 404
    assert r.headers["X-Error-Code"] == "NotFound"
    assert r.json()["Code"] == "NotFound"


def gateway_event(path: str) -> dict:
    """What API Gateway (REST, proxy integration) hands the function for the stage root."""
    return {
        "resource": "/", "path": "/", "httpMethod": "GET", "headers": {"Accept": "text/html"},
        "multiValueHeaders": {"Accept": ["text/html"]}, "queryStringParameters": None,
        "multiValueQueryStringParameters": None, "pathParameters": None, "stageVariables": None,
        "requestContext": {"resourcePath": "/", "httpMethod": "GET", "path": path, "stage": "api",
                           "requestId": "r-1", "identity": {"sourceIp": "203.0.113.9"}},
        "body": None, "isBase64Encoded": False,
    }


def test_behind_api_gateway_the_stage_root_gets_its_slash(aws_env):
    import app as app_module

    class Context:
        function_name, aws_request_id = "nshub-dev", "r-1"

    # Given the stage root without its slash, relative asset URLs would escape the stage
    moved = app_module.app(gateway_event("/api"), Context())
    assert moved["statusCode"] == 301
    assert moved["headers"]["Location"] == "api/"
    # With it, the page itself (text, so no binary media type is needed)
    page = app_module.app(gateway_event("/api/"), Context())
    assert page["statusCode"] == 200
    assert not page.get("isBase64Encoded")
    assert 'src="console/main.js"' in page["body"]


# ------------------------------------------------------------------ in the browser


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import expect as playwright_expect
    from playwright.sync_api import sync_playwright

    # The machine may be busy: wait for what must appear, but never sleep.
    playwright_expect.set_options(timeout=30_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox"])
        yield browser
        browser.close()


class Watched:
    """A browser tab on the console that records what must never happen."""

    def __init__(self, context, origin: str):
        self.context = context
        self.page = context.new_page()
        self.origin = origin
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", self._request)

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _request(self, request):
        parts = urlsplit(request.url)
        if f"{parts.scheme}://{parts.netloc}" != self.origin:
            self.foreign.append(request.url)

    def check(self, allowed_errors: tuple[str, ...] = ()):
        assert self.dialogs == [], "a script injected into the page ran"
        unexpected = [e for e in self.errors if not any(a in e for a in allowed_errors)]
        assert unexpected == []
        assert self.foreign == []


@pytest.fixture
def browser(chromium, live_api):
    """A fresh browser profile per test; yields a factory of watched tabs."""
    contexts, tabs = [], []

    def open_tab(viewport=DESKTOP) -> Watched:
        context = chromium.new_context(viewport=viewport, base_url=live_api)
        context.set_default_timeout(60_000)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_api)
        contexts.append(context)
        tab = Watched(context, live_api)
        tabs.append(tab)
        return tab

    yield open_tab
    for context in contexts:
        context.close()


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def sign_in(page, username: str, password: str):
    page.goto("/#/signin")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#account")).to_contain_text(f"Signed in as {username}")


def cli(*argv: str) -> int:
    return main(list(argv))


def login_cli(user: str, password: str):
    with Client() as client:
        client.login(user, password)


def push_array(tmp_path: Path, full_name: str, data: bytes = b"some bytes\n", *extra: str):
    source = tmp_path / f"{full_name.replace('/', '_')}.bin"
    source.write_bytes(data)
    assert cli("push", str(source), full_name, *extra) == 0


@pytest.mark.browser
def test_sign_up_sign_out_and_sign_in(browser, api):
    tab = browser()
    page = tab.page
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_role("link", name="Sign up").first.click()

    # a username that cannot be a namespace is refused before anything is sent
    page.get_by_label("Username").fill("Not A Namespace")
    page.get_by_label("Email").fill("carol@example.com")
    page.get_by_label("Password").fill("Carol-passw0rd")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("alert")).to_contain_text("cannot be a username")

    # a new account (the dev stage confirms at once) lands in its empty Storage tab
    page.get_by_label("Username").fill("carol")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#account")).to_contain_text("Signed in as carol")
    expect(page.get_by_role("heading", level=1)).to_have_text("Storage: your arrays")
    expect(page.locator(".empty")).to_contain_text("You have no arrays yet")
    expect(page.locator(".empty")).to_contain_text("nshub push data.bin carol/my-data")
    assert api.post("/v1/auth/login", json={"username": "carol", "password": "Carol-passw0rd"}).ok

    # the session survives a reload of the tab, and is not in the URL
    page.reload()
    expect(page.locator("#account")).to_contain_text("Signed in as carol")
    assert "eyJ" not in page.url and "token" not in page.url

    # signing out forgets it, also after a reload
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    page.goto("/#/storage")
    expect(page.locator(".lead")).to_contain_text("Sign in to see your arrays")

    # a wrong password says so, in one line
    page.goto("/#/signin")
    page.get_by_label("Username").fill("carol")
    page.get_by_label("Password").fill("wrong-Passw0rd")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("wrong username or password: check both and try again")

    sign_in(page, "carol", "Carol-passw0rd")
    expect(page.get_by_role("heading", level=1)).to_have_text("Storage: your arrays")
    tab.check(allowed_errors=("status of 401",))


@pytest.mark.browser
def test_stages_that_send_a_code_confirm_the_account(browser, api, monkeypatch):
    from chalicelib import config

    # Given a stage with e-mail: sign-ups wait for their code (moto accepts any code)
    monkeypatch.setenv("NSHUB_STAGE", "prod")
    config.reset()
    tab = browser()
    page = tab.page
    page.goto("/#/signup")
    page.get_by_label("Username").fill("dave")
    page.get_by_label("Email").fill("dave@example.com")
    page.get_by_label("Password").fill("Dave-passw0rd")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your account")
    expect(page.locator("form")).to_contain_text("We sent a confirmation code to the email address of dave")
    assert api.post("/v1/auth/login", json={"username": "dave", "password": "Dave-passw0rd"}
                    ).status_code == 403
    page.get_by_label("Confirmation code").fill("123456")
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#account")).to_contain_text("Signed in as dave")

    # an account left unconfirmed is confirmed later from the sign-in page
    assert api.post("/v1/auth/signup", json={"username": "erin", "password": "Erin-passw0rd",
                                             "email": "erin@example.com"}).status_code == 201
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("link", name="Confirm your account").click()
    page.get_by_label("Username").fill("erin")
    page.get_by_label("Password").fill("Erin-passw0rd")
    page.get_by_label("Confirmation code").fill("654321")
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#account")).to_contain_text("Signed in as erin")
    tab.check()


@pytest.mark.browser
def test_keyboard_only(browser, users):
    tab = browser()
    page = tab.page
    page.goto("/#/signin")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    # the first Tab reaches the skip link, which is shown when focused
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    # focus is always visible
    page.get_by_label("Username").focus()
    outline = page.get_by_label("Username").evaluate("node => getComputedStyle(node).outlineStyle")
    assert outline == "solid"
    # typing and Enter sign in; the new view's heading takes the focus
    page.keyboard.type("alice")
    page.keyboard.press("Tab")
    page.keyboard.type(users["alice"]["password"])
    page.keyboard.press("Enter")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text("Storage: your arrays")
    expect(heading).to_be_focused()
    # the tabs are links in order, reachable with Tab
    page.get_by_role("link", name="Executors").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Executors: your executors")
    expect(page.get_by_role("link", name="Executors")).to_have_attribute("aria-current", "page")
    tab.check()


@pytest.mark.browser
def test_an_array_pushed_by_the_cli(browser, api, users, home, tmp_path):
    login_cli("alice", users["alice"]["password"])
    push_array(tmp_path, "alice/fashion", b"v1 bytes\n", "--meta", "split=train")
    push_array(tmp_path, "alice/fashion", b"v2 bytes, longer\n")
    pushed = api.get("/v1/arrays/alice/fashion", token=users["alice"]["id_token"]).json()

    tab = browser()
    page = tab.page
    sign_in(page, "alice", users["alice"]["password"])

    # the list shows it, private, with its size, versions and date
    row = page.get_by_role("row").filter(has_text="alice/fashion")
    expect(row).to_contain_text("private")
    expect(row).to_contain_text("17 B")
    expect(row).to_contain_text("latest v2")

    # its page: versions, metadata, sha256, and snippets to pull it
    row.get_by_role("link", name="alice/fashion").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("alice/fashion")
    expect(page.locator(".facts")).to_contain_text(pushed["sha256"])
    versions = page.locator("section", has=page.get_by_role("heading", name="Versions"))
    expect(versions.get_by_role("row")).to_have_count(3)
    expect(versions).to_contain_text("v1")
    snippet = page.get_by_role("button", name="Copy Command line")
    snippet.click()
    assert page.evaluate("navigator.clipboard.readText()") == \
        "nshub pull alice/fashion -o fashion.bin"
    expect(page.locator(".snippet").filter(has_text="JINA_HUBBLE_REGISTRY")).to_contain_text(
        'DocumentArray.pull("alice/fashion")')

    # visibility: public, as the API says afterwards, and back
    page.get_by_role("button", name="Make public").click()
    expect(page.get_by_role("button", name="Make private")).to_be_visible()
    assert api.get("/v1/arrays/alice/fashion").json()["visibility"] == "public"
    page.get_by_role("button", name="Make private").click()
    expect(page.get_by_role("button", name="Make public")).to_be_visible()
    assert api.get("/v1/arrays/alice/fashion").status_code == 404

    # delete: only once the full name is typed
    delete = page.get_by_role("button", name="Delete this array")
    expect(delete).to_be_disabled()
    page.get_by_label("Type alice/fashion to confirm").fill("alice/fashio")
    expect(delete).to_be_disabled()
    page.get_by_label("Type alice/fashion to confirm").fill("alice/fashion")
    delete.click()
    expect(page.locator(".empty")).to_contain_text("You have no arrays yet")
    gone = api.get("/v1/arrays/alice/fashion", token=users["alice"]["id_token"])
    assert gone.status_code == 404
    tab.check()


@pytest.mark.browser
def test_another_namespace_shows_its_public_arrays_only(browser, users, home, tmp_path):
    login_cli("bob", users["bob"]["password"])
    push_array(tmp_path, "bob/shared", b"public\n", "--public")
    push_array(tmp_path, "bob/secret", b"private\n")

    tab = browser()
    page = tab.page
    sign_in(page, "alice", users["alice"]["password"])
    page.get_by_label("Browse a namespace").fill("/bob")
    page.get_by_role("button", name="Browse").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Storage: bob")
    expect(page.get_by_role("link", name="bob/shared")).to_be_visible()
    expect(page.locator("table.list")).not_to_contain_text("bob/secret")
    # no owner controls on someone else's array
    page.get_by_role("link", name="bob/shared").click()
    expect(page.locator(".facts")).to_contain_text("public")
    expect(page.get_by_role("button", name="Make private")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete this array")).to_have_count(0)

    # the private one, even by its exact address, is the same as a missing one
    page.goto("/#/storage/bob/secret")
    expect(page.get_by_role("alert")).to_contain_text(
        "There is no array bob/secret that you can see: it does not exist, or it is private")
    page.goto("/#/storage/bob/missing")
    expect(page.get_by_role("alert")).to_contain_text("There is no array bob/missing")

    # anonymous visitors browse too, and are told to sign in for their own
    anonymous = browser().page
    anonymous.goto("/#/storage/bob")
    expect(anonymous.get_by_role("link", name="bob/shared")).to_be_visible()
    expect(anonymous.locator("table.list")).not_to_contain_text("bob/secret")
    anonymous.goto("/#/storage/bob/secret")
    expect(anonymous.get_by_role("alert")).to_contain_text("If it is yours, sign in first.")
    tab.check(allowed_errors=("status of 404",))


@pytest.mark.browser
def test_hostile_strings_show_as_text_and_never_run(browser, api, users, home, tmp_path):
    login_cli("bob", users["bob"]["password"])
    push_array(tmp_path, "bob/hostile", b"x\n", "--public", "--meta", f"note={HOSTILE}")
    assert api.patch("/v1/arrays/bob/hostile", token=users["bob"]["id_token"],
                     json={"metadata": {"note": HOSTILE, HOSTILE: "key"}}).status_code == 200

    tab = browser()
    page = tab.page
    page.goto("/#/storage/bob/hostile")
    metadata = page.locator("section", has=page.get_by_role("heading", name="Metadata"))
    expect(metadata.get_by_role("cell", name=HOSTILE, exact=True)).to_have_count(2)
    assert page.locator("main img").count() == 0

    # a hostile namespace in the address is shown, not run, and nothing is asked of the API
    page.goto("/#/storage/" + HOSTILE.replace(" ", "%20"))
    expect(page.get_by_role("alert")).to_contain_text(f'"{HOSTILE}" is not a namespace')
    page.get_by_label("Browse a namespace").fill(HOSTILE)
    page.get_by_role("button", name="Browse").click()
    expect(page.get_by_role("alert").last).to_contain_text(f'"{HOSTILE}" is not a namespace')
    assert page.locator("main img").count() == 0
    tab.check()


@pytest.mark.browser
def test_pages_follow_the_api_cursor(browser, api, users):
    from tests.helpers import push

    token = users["alice"]["id_token"]
    for i in range(12):
        push(api, token, f"alice/part-{i:02d}", f"{i}\n".encode())

    tab = browser()
    page = tab.page
    sign_in(page, "alice", users["alice"]["password"])
    page.get_by_label("Per page").select_option("10")
    links = page.locator("table.list tbody a")
    expect(links).to_have_count(10)
    first_page = links.all_text_contents()
    expect(page.get_by_role("button", name="Previous page")).to_be_disabled()
    page.get_by_role("button", name="Next page").click()
    expect(links).to_have_count(2)
    expect(page.get_by_role("button", name="Next page")).to_be_disabled()
    second_page = links.all_text_contents()
    assert sorted(first_page + second_page) == [f"alice/part-{i:02d}" for i in range(12)]
    page.get_by_role("button", name="Previous page").click()
    expect(links).to_have_count(10)
    assert links.all_text_contents() == first_page
    tab.check()


@pytest.mark.browser
def test_an_executor_pushed_by_the_cli(browser, api, users, home, tmp_path):
    login_cli("alice", users["alice"]["password"])
    folder = executor_folder(tmp_path / "MyExecutor")
    assert cli("hub", "push", str(folder), "--tag", "v1.0") == 0

    tab = browser()
    page = tab.page
    sign_in(page, "alice", users["alice"]["password"])
    page.get_by_role("link", name="Executors").click()
    row = page.get_by_role("row").filter(has_text="alice/MyExecutor")
    expect(row).to_contain_text("v1.0")
    expect(row).to_contain_text("private")
    expect(row).to_contain_text("pending")
    row.get_by_role("link", name="alice/MyExecutor").click()

    page.get_by_role("button", name="Copy Source URI", exact=True).click()
    assert page.evaluate("navigator.clipboard.readText()") == "jinaai://alice/MyExecutor"
    page.get_by_role("button", name="Copy Docker image URI").click()
    assert page.evaluate("navigator.clipboard.readText()") == "jinaai+docker://alice/MyExecutor"
    expect(page.get_by_role("button", name="Copy Source URI, tag v1.0")).to_be_visible()

    page.get_by_role("button", name="Make public").click()
    expect(page.get_by_role("button", name="Make private")).to_be_visible()
    assert api.get("/v1/executors/alice/MyExecutor").json()["visibility"] == "public"

    page.get_by_label("Type alice/MyExecutor to confirm").fill("alice/MyExecutor")
    page.get_by_role("button", name="Delete this executor").click()
    expect(page.locator(".empty")).to_contain_text("nshub hub push ./MyExecutor")
    assert api.get("/v1/executors/alice/MyExecutor").status_code == 404
    tab.check()


@pytest.mark.browser
def test_every_tab_fits_a_phone_and_a_desktop(browser, api, users, home, tmp_path):
    """Screenshots of each tab at both sizes; NSHUB_SCREENSHOTS=docs/screenshots refreshes the
    README's. At 375 px nothing may scroll sideways."""
    out = Path(os.environ.get("NSHUB_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    login_cli("alice", users["alice"]["password"])
    push_array(tmp_path, "alice/fashion_mnist", os.urandom(3000), "--public", "--meta",
               "split=train", "--meta", "source=zalando")
    push_array(tmp_path, "alice/fashion_mnist", os.urandom(4096), "--public")
    push_array(tmp_path, "alice/notes", b"private notes\n")
    assert cli("hub", "push", str(executor_folder(tmp_path / "MyExecutor")), "--tag", "v1.0",
               "--public") == 0
    for name, scopes in (("nightly CI", ["read"]), ("laptop", ["read", "write"])):
        assert api.post("/v1/tokens", token=users["alice"]["id_token"],
                        json={"name": name, "scopes": scopes}).status_code == 201

    shots = {
        "storage": "/#/storage",
        "array": "/#/storage/alice/fashion_mnist",
        "executors": "/#/executors",
        "executor": "/#/executors/alice/MyExecutor",
        "tokens": "/#/tokens",
    }
    for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        tab = browser(viewport)
        page = tab.page
        sign_in(page, "alice", users["alice"]["password"])
        for name, address in shots.items():
            page.goto(address)
            expect(page.get_by_role("heading", level=1)).to_be_visible()
            page.wait_for_load_state("networkidle")
            page.locator("#status").evaluate("node => { node.hidden = true; }")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], f"{name} scrolls sideways at {size}"
            page.screenshot(path=str(out / f"{name}-{size}.png"))
        tab.check(allowed_errors=("status of 404",))
    assert len(list(out.glob("*.png"))) == 2 * len(shots)



@pytest.mark.browser
def test_tokens_are_created_copied_used_and_revoked(browser, api, users, home, tmp_path,
                                                    monkeypatch, capsys):
    tab = browser()
    page = tab.page
    page.goto("/#/tokens")
    expect(page.locator(".lead")).to_contain_text("Sign in to see and create your access tokens")
    sign_in(page, "alice", users["alice"]["password"])
    page.get_by_role("link", name="Tokens").click()
    expect(page.locator(".empty")).to_contain_text("No tokens yet")

    # a name the API refuses: its message, in one line
    page.get_by_label("Name").fill("bad<name>")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("alert")).to_contain_text("a token name is 1-100 letters")

    # created: shown once, copied with its button
    page.get_by_label("Name").fill("laptop")
    page.get_by_label("Scope").select_option("read write")
    page.get_by_label("Expires in (days)").fill("30")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator(".new-token")).to_contain_text("this is the only time it is shown")
    page.get_by_role("button", name="Copy Token").click()
    secret = page.evaluate("navigator.clipboard.readText()")
    assert re.fullmatch(r"nshub_[A-Za-z0-9]{40}", secret)
    row = page.get_by_role("row").filter(has_text="laptop")
    expect(row).to_contain_text("read, write")
    expect(row.locator('td[data-label="Last used"]')).to_have_text("never")
    page.get_by_role("button", name="I have copied it").click()
    expect(page.locator(".new-token")).to_have_count(0)
    assert secret not in page.content()
    listed = api.get("/v1/tokens", token=users["alice"]["id_token"]).json()["items"]
    assert [(t["name"], t["scopes"]) for t in listed] == [("laptop", ["read", "write"])]

    # the CLI works with it, as alice, and the console shows its last use
    monkeypatch.setenv("NSHUB_TOKEN", secret)
    capsys.readouterr()
    assert cli("whoami") == 0 and capsys.readouterr().out == "alice\n"
    push_array(tmp_path, "alice/by-token", b"pushed with a token\n")
    page.reload()
    expect(page.get_by_role("row").filter(has_text="laptop")
           .locator('td[data-label="Last used"]')).to_contain_text("UTC")

    # revoked after a confirmation: gone from the list, refused by the API
    page.get_by_role("button", name="Revoke token laptop").click()
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("row").filter(has_text="laptop")).to_be_visible()
    page.get_by_role("button", name="Revoke token laptop").click()
    page.get_by_role("button", name="Revoke now").click()
    expect(page.locator(".empty")).to_contain_text("No tokens yet")
    capsys.readouterr()
    assert cli("whoami") == 1
    assert "(Unauthorized)" in capsys.readouterr().err
    assert api.get("/v1/tokens", token=users["alice"]["id_token"]).json()["items"] == []
    tab.check(allowed_errors=("status of 400",))
