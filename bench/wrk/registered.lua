-- The secure registered transfer (two operators, two persons): an operator proposes
-- POST /v1/transfers/registered (1 unit from a random holder of a random lot to another holder of
-- that lot; 202, a proposal) and the second operator approves it with
-- POST /v1/proposals/{id}/approve (200; the transfer settles in the approval's transaction). Each
-- request has a fresh Idempotency-Key. `done` reports `settled`: approvals that succeeded, i.e.
-- settled transfers (each costs two requests).
-- The data file (first script argument, written by bench.py) defines TOKEN (the proposing
-- operator), CHECKER (the approving operator), LOTS (lot ids) and HOLDERS[lot index] = {party ids}.

local threads = {}
local counter = 0
local pending = {}
settled = 0

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  dofile(args[1])
  -- `tid` is the global that setup() set in this thread's Lua state.
  math.randomseed(os.time() * 1000 + tid)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  nonce = tostring(os.time()) .. "-" .. tostring(math.random(1, 1000000000))
end

function request()
  counter = counter + 1
  wrk.headers["Idempotency-Key"] = string.format("w%s-%s-%d", tostring(tid), nonce, counter)
  local id = table.remove(pending)
  if id then
    wrk.headers["Authorization"] = "Bearer " .. CHECKER
    return wrk.format(nil, "/v1/proposals/" .. id .. "/approve", nil, "{}")
  end
  local i = math.random(1, #LOTS)
  local hs = HOLDERS[i]
  local a = math.random(1, #hs)
  local b = math.random(1, #hs - 1)
  if b >= a then b = b + 1 end
  local body = string.format('{"lot_id":%d,"from_party_id":%d,"to_party_id":%d,"quantity":"1"}',
    LOTS[i], hs[a], hs[b])
  wrk.headers["Authorization"] = "Bearer " .. TOKEN
  return wrk.format(nil, "/v1/transfers/registered", nil, body)
end

function response(status, headers, body)
  if status == 202 then
    -- The proposal's own id is the body's first field.
    local id = string.match(body, '^{"id":(%d+)')
    if id then table.insert(pending, id) end
  elseif status == 200 then
    settled = settled + 1
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local n = 0
  for _, t in ipairs(threads) do n = n + (t:get("settled") or 0) end
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"non2xx":%d,"socket_errors":%d,"p50_us":%d,"p99_us":%d,"settled":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), n))
end
