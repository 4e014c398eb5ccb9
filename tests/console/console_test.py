#!/usr/bin/env python3
"""The operator console in a real browser (Debian's Chromium, driven by Playwright).

Starts the real binary (`freshtap demo`, relay + CleverTap simulator on ports of its own), makes
the simulator refuse a contact with code 516, posts that contact, and then, in the browser:
signs in (a wrong token first), opens "Dead letters", finds code 516 with CleverTap's reason and
the body masked, reveals it, pauses and resumes the account, clears the fault, clicks "Replay"
and sees the webhook delivered on the lookup page and in the simulator; opens "Audit log" and
finds the pause and the replay there as done by the console, and an erasure by its hash only.
Also: a POST without the CSRF token is refused, the session cookie is HttpOnly and
SameSite=Strict, signing out ends the session. Every wait is bounded. With --screenshots DIR it saves a PNG of each page there.

Usage: console_test.py [--binary target/debug/freshtap] [--screenshots docs/console]
Exits non-zero, naming the failed check, when anything is not as expected.
"""

import argparse
import json
import shutil
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The demo's own credentials (src/demo.rs).
ROUTE_TOKEN = "demo-token"
ADMIN_TOKEN = "demo-admin"
# Not the demo's sample contact, whose address the demo prints in its banner.
EMAIL = "nora.quinn@example.net"
CONTACT = {
    "contact_id": 16001234567,
    "contact_first_name": "Nora",
    "contact_last_name": "Quinn",
    "contact_email": EMAIL,
    "contact_mobile_number": "+44 7700 900456",
    "contact_lead_source_name": "Web Form",
    "contact_updated_at": "26-11-2026 09:14:33",
}
REQUEST_ID = "console-test-nora"
# CleverTap's text for 516, as the simulator (and CleverTap) answers it.
REASON_516 = "Phone number is not valid"
WAIT_S = 20

checks = []


def check(name, condition, detail=""):
    checks.append((name, bool(condition)))
    print(f"{'ok  ' if condition else 'FAIL'} {name}{(': ' + detail) if detail and not condition else ''}")
    if not condition:
        raise AssertionError(f"{name}: {detail}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
        return None, str(error)


def wait_for(what, probe, timeout=WAIT_S):
    """Polls `probe` (a cheap request) until it returns a truthy value; bounded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Demo:
    """`freshtap demo` on free ports with a queue in a temporary directory."""

    def __init__(self, binary):
        self.relay_port, self.sim_port = free_port(), free_port()
        self.dir = tempfile.mkdtemp(prefix="freshtap-console-", dir=ROOT / "target")
        self.log = open(Path(self.dir) / "demo.log", "w")
        self.process = subprocess.Popen(
            [binary, "demo", "--bind", f"127.0.0.1:{self.relay_port}",
             "--simulator-bind", f"127.0.0.1:{self.sim_port}", "--data-dir", self.dir],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        self.relay = f"http://127.0.0.1:{self.relay_port}"
        self.sim = f"http://127.0.0.1:{self.sim_port}"
        wait_for("the relay to be ready", lambda: http("GET", f"{self.relay}/readyz")[0] == 200)

    def admin(self, path):
        status, text = http("GET", f"{self.relay}{path}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        return json.loads(text) if status == 200 else None

    def post_contact(self, contact, request_id):
        return http("POST", f"{self.relay}/webhooks/contacts", contact,
                    {"X-Freshtap-Token": ROUTE_TOKEN, "X-Request-ID": request_id})

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log.close()

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_text(self):
        return (Path(self.dir) / "demo.log").read_text(errors="replace")


def shoot(page, directory, name):
    if directory:
        page.screenshot(path=str(Path(directory) / f"{name}.png"), full_page=True)


def arrange(demo):
    """Some traffic for the overview, then the contact CleverTap refuses with 516."""
    for i in range(6):
        other = dict(CONTACT, contact_id=16001234000 + i, contact_email=f"lead{i}@example.com",
                     contact_mobile_number=f"+44 7700 90{i:04d}")
        status, _ = demo.post_contact(other, f"console-test-lead-{i}")
        check(f"webhook {i} accepted", status == 202, str(status))
    status, text = http("POST", f"{demo.sim}/_sim/faults", {"record_codes": {EMAIL: 516}})
    check("the simulator refuses the contact with 516", status == 200, text)
    status, text = demo.post_contact(CONTACT, REQUEST_ID)
    check("the refused contact is accepted by the relay", status == 202, text)

    def dead_letter():
        listing = demo.admin("/admin/dead-letters?code=516")
        return listing and listing["items"] and listing["items"][0]

    letter = wait_for("the 516 dead letter", dead_letter)
    check("the dead letter is the contact's", letter["request_id"] == REQUEST_ID, json.dumps(letter))
    wait_for("the other webhooks to be delivered",
             lambda: (demo.admin("/admin/stats") or {}).get("rows", {}).get("delivered") == 6)
    return letter["id"]


def sign_in(page, demo, shots):
    page.goto(f"{demo.relay}/console")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    check("an anonymous visitor is sent to the sign-in form", page.url.endswith("/console/sign-in"), page.url)
    shoot(page, shots, "sign-in")
    page.get_by_label("Admin token").fill("not-the-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("That is not the admin token.")).to_be_visible()
    cookies = {c["name"] for c in page.context.cookies()}
    check("a wrong token does not sign in", "freshtap_console" not in cookies, str(cookies))
    check("the sign-in form is shown again", page.get_by_label("Admin token").is_visible())
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    session = [c for c in page.context.cookies() if c["name"] == "freshtap_console"]
    check("signing in sets the session cookie", len(session) == 1, str(page.context.cookies()))
    check("the session cookie is HttpOnly", session[0]["httpOnly"] is True, str(session[0]))
    check("the session cookie is SameSite=Strict", session[0]["sameSite"] == "Strict", str(session[0]))
    check("the session cookie is for /console only", session[0]["path"] == "/console", str(session[0]))
    check("page script cannot read the session cookie",
          "freshtap_console=" not in page.evaluate("document.cookie"))


def pause_and_resume(page, shots):
    row = page.get_by_role("row").filter(has_text="DEMO-ACC-001")
    row.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("status").filter(has_text="Account main paused")).to_be_visible()
    expect(row.locator(".hold strong")).to_have_text("paused by an operator")
    shoot(page, shots, "overview-paused")
    row.get_by_role("button", name="Resume").click()
    expect(page.get_by_role("status").filter(has_text="Account main resumed")).to_be_visible()
    expect(row.get_by_text("delivering")).to_be_visible()


def dead_letters(page, demo, letter_id, shots):
    page.get_by_role("navigation").get_by_role("link", name="Dead letters", exact=True).click()
    expect(page.get_by_role("heading", name="Dead letters")).to_be_visible()
    row = page.locator(f"#letter-{letter_id}")
    expect(row).to_be_visible()
    expect(row.locator(".code")).to_have_text("516")
    expect(row).to_contain_text(REASON_516)
    expect(row).to_contain_text(REQUEST_ID)
    body = page.locator(f"#letter-{letter_id} + tr .body")
    check("the body shows the email masked", "no***@example.net" in body.text_content(), body.text_content())
    check("the body does not show the email", EMAIL not in page.content())
    check("the body does not show the phone", "7700 900456" not in page.content())
    page.locator(f"#letter-{letter_id} + tr summary").click()
    shoot(page, shots, "dead-letters")

    page.locator(f"#letter-{letter_id} + tr").get_by_role("button", name="Reveal").click()
    expect(page.get_by_role("heading", name=f"Dead letter {letter_id}")).to_be_visible()
    expect(page.locator("pre.body")).to_contain_text(EMAIL)
    shoot(page, shots, "dead-letter-revealed")

    # A POST with the session cookie but without the CSRF token changes nothing.
    forged = page.context.request.post(f"{demo.relay}/console/dead-letters/{letter_id}/replay",
                                       form={"route": "contacts"}, max_redirects=0)
    check("a POST without the CSRF token is refused with 403", forged.status == 403, str(forged.status))
    check("the refused POST replayed nothing",
          any(i["id"] == letter_id for i in demo.admin("/admin/dead-letters")["items"]))

    status, text = http("POST", f"{demo.sim}/_sim/faults", {"record_codes": {EMAIL: 0}})
    check("the fault is cleared", status == 200, text)
    page.get_by_role("navigation").get_by_role("link", name="Dead letters", exact=True).click()
    page.locator(f"#letter-{letter_id}").get_by_role("button", name="Replay").click()
    expect(page.get_by_role("status").filter(has_text=f"Replayed dead letter {letter_id}")).to_be_visible()


def audit_log(page, demo, letter_id, shots):
    """The console's own actions on the audit page, as GET /admin/audit records them."""
    entries = demo.admin("/admin/audit")["items"]
    replayed = entries[0]
    check("the console's replay is the newest audit entry",
          (replayed["action"], replayed["target"], replayed["credential"])
          == ("replay", f"dead letter {letter_id}", "console"), json.dumps(replayed))
    paused = next((e for e in entries if e["action"] == "pause"), None)
    check("the console's pause is in the audit log",
          paused and (paused["target"], paused["credential"]) == ("account main", "console"),
          json.dumps(entries))
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Audit log", exact=True).click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    row = page.locator(f"#audit-{replayed['id']}")
    expect(row.locator(".action")).to_have_text("replay")
    expect(row.locator(".target")).to_have_text(f"dead letter {letter_id}")
    expect(row).to_contain_text("console")
    expect(row).to_contain_text(replayed["request_id"])
    expect(page.locator(f"#audit-{paused['id']} .target")).to_have_text("account main")
    shoot(page, shots, "audit-log")

    status, text = http("POST", f"{demo.relay}/admin/erasures", {"identity": "lead0@example.com"},
                        {"Authorization": f"Bearer {ADMIN_TOKEN}"})
    check("an erasure through the admin API", status == 200, text)
    erasure = json.loads(text)
    page.get_by_role("link", name="Erasures", exact=True).click()
    expect(page.get_by_role("heading", name="Erasures")).to_be_visible()
    expect(page.locator(f"#erasure-{erasure['id']}")).to_contain_text(erasure["identity_hash"][:12])
    check("the erasures page does not show the identity", "lead0@" not in page.content())
    shoot(page, shots, "erasures")


def delivered(page, demo, shots):
    def lookup_says_delivered():
        page.goto(f"{demo.relay}/console/webhooks?request_id={REQUEST_ID}")
        return page.locator("#webhook-state").inner_text() == "delivered"

    wait_for("the lookup page to show the webhook delivered", lookup_says_delivered)
    expect(page.locator("#records-delivered")).to_contain_text("1")
    status, text = http("GET", f"{demo.sim}/_sim/profiles/{EMAIL}")
    check("CleverTap (the simulator) holds the profile", status == 200 and "Nora Quinn" in text, f"{status} {text[:200]}")
    page.get_by_label("Request id").fill(REQUEST_ID)
    page.get_by_role("button", name="Look up").click()
    expect(page.locator("#webhook-state")).to_have_text("delivered")
    shoot(page, shots, "webhook-lookup")
    page.get_by_role("navigation").get_by_role("link", name="Overview", exact=True).click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    shoot(page, shots, "overview")


def sign_out(page, demo):
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("Signed out.")).to_be_visible()
    page.goto(f"{demo.relay}/console/dead-letters")
    check("after signing out the console asks to sign in again", page.url.endswith("/console/sign-in"), page.url)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=str(ROOT / "target/debug/freshtap"))
    parser.add_argument("--screenshots", help="save a PNG of each page into this directory")
    args = parser.parse_args()
    if args.screenshots:
        os.makedirs(args.screenshots, exist_ok=True)
    demo = Demo(args.binary)
    failed = 0
    try:
        letter_id = arrange(demo)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, timeout=30_000)
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            page.set_default_timeout(WAIT_S * 1000)
            requested, refused = [], []
            page.on("request", lambda request: requested.append(request.url))
            page.on("console", lambda message: refused.append(message.text)
                    if "Content Security Policy" in message.text else None)
            sign_in(page, demo, args.screenshots)
            pause_and_resume(page, args.screenshots)
            dead_letters(page, demo, letter_id, args.screenshots)
            audit_log(page, demo, letter_id, args.screenshots)
            delivered(page, demo, args.screenshots)
            sign_out(page, demo)
            browser.close()
        elsewhere = [url for url in requested if not url.startswith(demo.relay + "/")]
        check("the pages load nothing from elsewhere", not elsewhere, str(elsewhere))
        check("nothing on the pages breaks the content security policy", not refused, str(refused))
        check("no email reached the relay's log", EMAIL not in demo.log_text())
    except Exception as error:  # a failed check or a Playwright timeout: report, then fail
        failed = 1
        print(f"FAIL {type(error).__name__}: {error}")
        print("--- relay log (last lines) ---\n" + "\n".join(demo.log_text().splitlines()[-30:]))
    finally:
        demo.stop()
    if not failed and all(ok for _, ok in checks):
        demo.remove()
    else:
        print(f"kept for a look: {demo.dir}")
    passed = sum(1 for _, ok in checks if ok)
    # A timeout in the browser fails no named check: count it as one failure.
    failures = max(len(checks) - passed, failed)
    print(f"console: {passed} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
