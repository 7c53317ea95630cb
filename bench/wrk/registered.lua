-- POST /v1/transfers/registered: an operator registers 1 unit from a random holder of a random lot
-- to another holder of that lot. Each request has a fresh Idempotency-Key.
-- The data file (first script argument, written by bench.py) defines TOKEN, LOTS (lot ids) and
-- HOLDERS[lot index] = {party ids}.

local threads = {}
local counter = 0

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  dofile(args[1])
  -- `tid` is the global that setup() set in this thread's Lua state.
  math.randomseed(os.time() * 1000 + tid)
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer " .. TOKEN
  wrk.headers["Content-Type"] = "application/json"
  nonce = tostring(os.time()) .. "-" .. tostring(math.random(1, 1000000000))
end

function request()
  counter = counter + 1
  local i = math.random(1, #LOTS)
  local hs = HOLDERS[i]
  local a = math.random(1, #hs)
  local b = math.random(1, #hs - 1)
  if b >= a then b = b + 1 end
  local body = string.format('{"lot_id":%d,"from_party_id":%d,"to_party_id":%d,"quantity":"1"}',
    LOTS[i], hs[a], hs[b])
  wrk.headers["Idempotency-Key"] = string.format("w%s-%s-%d", tostring(tid), nonce, counter)
  return wrk.format(nil, "/v1/transfers/registered", nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"non2xx":%d,"socket_errors":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
