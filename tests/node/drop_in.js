// CleverTap's own Node library (npm `clevertap`) as the judge of freshtap's drop-in /1/upload.
//
// It starts nothing: it is given a running relay and an account the relay knows
//   FRESHTAP_URL          the relay's base URL, e.g. http://127.0.0.1:8080
//   FRESHTAP_ACCOUNT_ID   the account's X-CleverTap-Account-Id
//   FRESHTAP_PASSCODE     its X-CleverTap-Passcode
// and points the library at it the least invasive way the library allows: its instance's
// `api.apiEndpoint` (by default https://<region>.api.clevertap.com/1) becomes <FRESHTAP_URL>/1.
//
// It uploads more than 1000 profiles and events with the library's own `upload` (which splits
// them into requests of 100), some of which CleverTap would refuse, and checks the library's
// parsed answers as CleverTap documents them: status, processed, and each unprocessed item's
// code, "Skipped record number : k" (k counted in the library's request) and echoed record.
// Then CleverTap's error envelopes: a wrong passcode, an unknown account, a request over the
// relay's byte limit. Every check that fails is printed to stderr and the exit status is 1.
//
// On stdout, one JSON document: {"delivered": [...]}, the records CleverTap should receive from
// the relay (the accepted ones, as sent or with freshtap's documented repairs), which the Rust
// test (tests/node_client.rs) compares with what its simulator received.
"use strict";

const assert = require("node:assert/strict");
const clevertap = require("clevertap");

const BATCH = 100; // the library's request size (and its maximum)
const TOTAL = 1234;
const TS = 1764150000;

const failures = [];
function check(what, fn) {
  try {
    fn();
  } catch (error) {
    failures.push(`${what}: ${error.message}`);
  }
}

function env(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set`);
    process.exit(2);
  }
  return value;
}

/// A library instance whose requests go to the relay instead of CleverTap.
function client(accountId, passcode) {
  const instance = clevertap.init(accountId, passcode, clevertap.REGIONS.EUROPE);
  instance.api.apiEndpoint = `${env("FRESHTAP_URL").replace(/\/+$/, "")}/1`;
  return instance;
}

function profile(i, data) {
  return { identity: `node-${i}@example.com`, ts: TS + i, type: "profile", profileData: data };
}

function event(i, name, data) {
  return { identity: `node-${i}@example.com`, ts: TS + i, type: "event", evtName: name, evtData: data };
}

/// Records CleverTap refuses, by position: [record, code, error text before "Skipped…"].
function refusals() {
  const p = (i, data) => profile(i, { Name: `Lead ${i}`, ...data });
  return new Map([
    [5, [p(5, { Email: "$$$$$" }), 515, "Profile data is incorrect. Email is not valid."]],
    [17, [p(17, { Phone: "+44+441234" }), 516, "Profile data is incorrect. Phone number is not valid."]],
    [150, [event(150, "Web Page Viewed", { title: "Pricing" }), 513,
      "Event Name is incorrect. ErrorCode: 513 - Trying to raise a restricted system event. "]],
    [333, [event(333, "Deal Updated", { prop1: { stage: "Won" } }), 512,
      "Event data is incorrect. 512 - Only Items can have a nested structure, incorrect nested structure for field : prop1."]],
    [499, [p(499, { Gender: "Female" }), 514, "Profile data is incorrect. Gender needs to be M/F."]],
    [700, [{ ...p(700, {}), ts: 0 }, 525, "Timestamp should be present in the Unix Epoch format. "]],
    [999, [{ ...p(999, {}), identity: "x".repeat(130) }, 523,
      "'identity' or 'fbId' or 'gpId' or 'objectId' is necessary under 120 chars to identify the user. "]],
    [1000, [p(1000, { Employed: "yes" }), 517, "Profile data is incorrect. Employed needs to be Y/N."]],
    [1001, [p(1001, { Education: "PhD" }), 518, "Profile data is incorrect. Education needs to be School/College/Graduate.."]],
    [1002, [p(1002, { Married: "maybe" }), 519, "Profile data is incorrect. Married needs to be Y/N."]],
    [1003, [p(1003, { Age: "aa" }), 520, "Profile data is incorrect. Age is invalid."]],
    [1100, [{ identity: "node-1100@example.com", ts: TS, type: "event", evtData: { a: 1 } }, 509,
      "Event Name is incorrect. ErrorCode: 509 - Event name is mandatory. "]],
    [1233, [{ ...event(1233, "Plan Changed", { From: "Free" }), ts: "yesterday" }, 525,
      "Timestamp should be present in the Unix Epoch format. "]],
  ]);
}

/// Records CleverTap takes after one of freshtap's documented repairs: [sent, delivered].
function repairs() {
  return new Map([
    [40, [profile(40, { Phone: "+49 1512 3456789" }), profile(40, { Phone: "+4915123456789" })]],
    [41, [{ ...event(41, "Demo Booked", { Seats: 3 }), ts: (TS + 41) * 1000 + 123 }, event(41, "Demo Booked", { Seats: 3 })]],
    [42, [profile(42, { Name: "Blank Email", Email: "" }), profile(42, { Name: "Blank Email" })]],
  ]);
}

/// What CleverTap takes as it is, in the shapes senders use: sets, operations, empty values.
function plain(i) {
  if (i === 60) {
    // A device token record: CleverTap's to judge, forwarded as it is (no `ts` is added).
    return { type: "token", identity: `node-${i}@example.com`, tokenData: { id: "fcm-token-60", type: "fcm" } };
  }
  switch (i % 7) {
    case 0:
      return profile(i, { Name: `Lead ${i}`, Email: `node-${i}@example.com`, Phone: "+14155550134", "Lead Source": "Web" });
    case 1:
      return event(i, "Deal Stage Changed", { From: "Qualified", To: "Won", Amount: 12000, Close: "$D_1764547200" });
    case 2:
      return profile(i, { "Login Count": { $incr: 1 }, Interests: { $add: ["pricing", "webinar"] }, Tags: [], Note: "" });
    case 3:
      return event(i, "Charged", { Amount: 300, Currency: "USD", Items: [{ Name: "Pro seat", Quantity: 3 }] });
    case 4:
      return event(i, "Viewed", {});
    case 5:
      return profile(i, { Gender: "F", Employed: "Y", Education: "Graduate", Married: "N", Age: 41, "MSG-sms": false, DOB: "$D_631152000" });
    default:
      return { ...profile(i, { Name: `Numbered ${i}`, Plan: { $delete: 1 } }), identity: 900000 + i };
  }
}

async function bulk(api) {
  const refused = refusals();
  const repaired = repairs();
  const records = [];
  const delivered = [];
  for (let i = 0; i < TOTAL; i += 1) {
    if (refused.has(i)) {
      records.push(refused.get(i)[0]);
    } else if (repaired.has(i)) {
      const [sent, after] = repaired.get(i);
      records.push(sent);
      delivered.push(after);
    } else {
      const record = plain(i);
      records.push(record);
      delivered.push(record);
    }
  }
  // The library mutates nothing it is given, but the echo is compared with a copy to be sure.
  const sent = structuredClone(records);
  const answers = await api.upload(records);
  check("one answer per library request", () => {
    assert.ok(Array.isArray(answers), `not an array: ${JSON.stringify(answers)}`);
    assert.equal(answers.length, Math.ceil(TOTAL / BATCH));
  });
  if (!Array.isArray(answers)) {
    return delivered;
  }
  let processed = 0;
  answers.forEach((answer, request) => {
    const first = request * BATCH;
    const batch = sent.slice(first, first + BATCH);
    const expected = [];
    batch.forEach((record, offset) => {
      const refusal = refused.get(first + offset);
      if (refusal) {
        expected.push({
          status: "fail",
          code: refusal[1],
          error: `${refusal[2]}Skipped record number : ${offset + 1}`,
          record,
        });
      }
    });
    const status = expected.length === 0 ? "success" : expected.length === batch.length ? "fail" : "partial";
    check(`request ${request + 1}: CleverTap's answer`, () => {
      assert.equal(typeof answer, "object", `the library could not read the answer: ${answer}`);
      assert.equal(answer.status, status);
      assert.equal(answer.processed, batch.length - expected.length);
      assert.deepEqual(answer.unprocessed, expected);
    });
    processed += typeof answer.processed === "number" ? answer.processed : 0;
  });
  check("processed and unprocessed add up to the records sent", () => {
    const unprocessed = answers.reduce((n, a) => n + (Array.isArray(a.unprocessed) ? a.unprocessed.length : 0), 0);
    assert.equal(processed, TOTAL - refused.size);
    assert.equal(processed + unprocessed, TOTAL);
  });
  return delivered;
}

async function envelopes(accountId, passcode) {
  const one = [profile(5000, { Name: "Never stored" })];
  const wrongPasscode = await client(accountId, `${passcode}-wrong`).upload(one);
  check("a wrong passcode", () =>
    assert.deepEqual(wrongPasscode, { status: "fail", error: "Invalid Credentials", code: 401 }));
  const unknownAccount = await client("ZZZ-000-0000", passcode).upload(one);
  check("an unknown account", () =>
    assert.deepEqual(unknownAccount, { status: "fail", error: "Account ID is not valid", code: 401 }));
  // 100 records of 60 kB: 6 MB, over the relay's default 5 MiB `server.max_upload_bytes`.
  const big = Array.from({ length: BATCH }, (_, i) => profile(6000 + i, { Notes: "x".repeat(60000) }));
  const tooLarge = await client(accountId, passcode).upload(big);
  check("a request over the byte limit", () =>
    assert.deepEqual(
      { status: tooLarge.status, code: tooLarge.code },
      { status: "fail", code: 413 },
      `the library read: ${JSON.stringify(tooLarge)}`,
    ));
}

async function main() {
  const accountId = env("FRESHTAP_ACCOUNT_ID");
  const passcode = env("FRESHTAP_PASSCODE");
  const delivered = await bulk(client(accountId, passcode));
  await envelopes(accountId, passcode);
  process.stdout.write(`${JSON.stringify({ delivered })}\n`);
  for (const failure of failures) {
    console.error(`FAIL ${failure}`);
  }
  console.error(`${failures.length === 0 ? "ok" : "failed"}: ${failures.length} of the checks failed`);
  // Not process.exit(): it would cut stdout short when it is a pipe.
  process.exitCode = failures.length === 0 ? 0 : 1;
}

main().catch((error) => {
  console.error(`the judge itself failed: ${error.stack || error}`);
  process.exitCode = 1;
});
