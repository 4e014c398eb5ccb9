-- wrk script: POSTs a unique 615-byte Freshsales Simple-mode contact per request (the relay
-- deduplicates identical bodies) and counts answers by status; done() prints one JSON line
-- prefixed "BENCH_JSON ". "unanswered": requests sent whose answer wrk never read (in flight when
-- the run stopped, or timed out) — the relay may have stored them. With BENCH_IDS_FILE set,
-- done() writes there the row id of every 202 answer, one a line (the exactly-once check). Environment: BENCH_TAG (unique per wrk run), BENCH_TOKEN.
local threads = {}
local next_tid = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

local tag = os.getenv("BENCH_TAG") or "bench0"
local token = os.getenv("BENCH_TOKEN") or "bench-token"
local size = 615
local n = 0
local pad = ""
ids = {}
sent, c202, c200, c503, c503_retry_after, cother = 0, 0, 0, 0, 0, 0

local function body(i)
  return string.format(
    '{"contact_id":1%02d%09d,"contact_first_name":"Amelia","contact_last_name":"Hart",'
    .. '"contact_email":"bench.%s.%02d.%09d@example.com","contact_mobile_number":"+44 7700 9%05d",'
    .. '"contact_work_number":"+44 20 7946 0958","contact_job_title":"Head of Growth",'
    .. '"contact_lead_score":42,"contact_lead_source_name":"Web Form",'
    .. '"contact_lifecycle_stage_name":"Lead",'
    .. '"contact_sales_account_name":"Hart and Co","contact_city":"London",'
    .. '"contact_country":"United Kingdom","contact_cf_plan":"Pro",'
    .. '"contact_created_at":"26-11-2026 09:14:33","contact_updated_at":"%s","contact_cf_notes":"%s"}',
    tid, i, tag, tid, i, i % 100000, os.date("!%d-%m-%Y %H:%M:%S", 1795000000 + i), pad)
end

function init(args)
  pad = string.rep("x", size - #body(0))
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-Freshtap-Token"] = token
end

function request()
  n = n + 1
  sent = sent + 1
  return wrk.format(nil, nil, nil, body(n))
end

function response(status, headers, body)
  if status == 202 then
    c202 = c202 + 1
    ids[#ids + 1] = body:match('"id":(%d+)')
  elseif status == 200 then
    c200 = c200 + 1
  elseif status == 503 then
    c503 = c503 + 1
    if headers["Retry-After"] or headers["retry-after"] then
      c503_retry_after = c503_retry_after + 1
    end
  else
    cother = cother + 1
  end
end

function done(summary, latency, _)
  local t = { sent = 0, c202 = 0, c200 = 0, c503 = 0, c503_retry_after = 0, cother = 0 }
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do
      t[k] = t[k] + (thread:get(k) or 0)
    end
  end
  local path = os.getenv("BENCH_IDS_FILE")
  if path then
    local f = assert(io.open(path, "w"))
    for _, thread in ipairs(threads) do
      for _, id in ipairs(thread:get("ids") or {}) do f:write(id, "\n") end
    end
    f:close()
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_s":%.3f,"rps":%.1f,"bytes_per_request":%d,'
    .. '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,'
    .. '"status_202":%d,"status_200":%d,"status_503":%d,"status_503_retry_after":%d,"status_other":%d,'
    .. '"unanswered":%d,"accepted_per_s":%.1f,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, secs, summary.requests / secs, size,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000,
    t.c202, t.c200, t.c503, t.c503_retry_after, t.cother,
    t.sent - t.c202 - t.c200 - t.c503 - t.cother, t.c202 / secs,
    e.connect, e.read, e.write, e.status, e.timeout))
end
