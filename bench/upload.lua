-- wrk script for the drop-in: POSTs /1/upload requests of 1000 CRM-sized profile records each
-- (~1.5 KB a record, unique identities), as a CleverTap client would, and counts the records
-- CleverTap's answer says were processed; done() prints one JSON line prefixed "BENCH_JSON ".
-- Environment: BENCH_TAG (unique per wrk run), BENCH_ACCOUNT, BENCH_PASSCODE.
local threads = {}
local next_tid = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

local tag = os.getenv("BENCH_TAG") or "upload0"
local per_request = 1000
local n = 0
local notes = string.rep("n", 1100)
sent, c200, processed, cother = 0, 0, 0, 0

local function record(i, k)
  return string.format(
    '{"identity":"up.%s.%02d.%07d.%04d@example.com","type":"profile","profileData":{'
    .. '"Name":"Amelia Hart","Email":"up.%s.%02d.%07d.%04d@example.com","Phone":"+4477009%05d",'
    .. '"Company":"Hart and Co","Job Title":"Head of Growth","City":"London","Plan":"Pro",'
    .. '"Lead Score":42,"Lifecycle Stage":"Lead","Notes":"%s"}}',
    tag, tid, i, k, tag, tid, i, k, (i * per_request + k) % 100000, notes)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-CleverTap-Account-Id"] = os.getenv("BENCH_ACCOUNT") or "SIM-ACC-001"
  wrk.headers["X-CleverTap-Passcode"] = os.getenv("BENCH_PASSCODE") or "sim-passcode"
end

function request()
  n = n + 1
  sent = sent + 1
  local records = {}
  for k = 1, per_request do records[k] = record(n, k) end
  return wrk.format(nil, "/1/upload", nil, '{"d":[' .. table.concat(records, ",") .. ']}')
end

function response(status, headers, body)
  if status == 200 then
    c200 = c200 + 1
    processed = processed + (tonumber(body:match('"processed":(%d+)')) or 0)
  else
    cother = cother + 1
  end
end

function done(summary, latency, _)
  tid = 0
  local t = { sent = 0, c200 = 0, processed = 0, cother = 0 }
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do
      t[k] = t[k] + (thread:get(k) or 0)
    end
  end
  local secs = summary.duration / 1e6
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_s":%.3f,"rps":%.1f,"records_per_request":%d,'
    .. '"bytes_per_request":%d,"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"status_200":%d,'
    .. '"status_other":%d,"records_processed":%d,"records_per_s":%.1f,"errors":{"connect":%d,'
    .. '"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, secs, summary.requests / secs, per_request,
    #record(1, 1) * per_request + per_request + 7,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    t.c200, t.cother, t.processed, t.processed / secs,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout))
end
