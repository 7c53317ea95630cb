-- GET of a random path from PATHS (defined by the data file, the first script argument), with the bearer GET_TOKEN when set.
-- Used for GET /v1/encumbrances/{no} as a bank, and /healthz.

local n = 0

function setup(thread)
  n = n + 1
  thread:set("tid", n)
end

function init(args)
  dofile(args[1])
  -- `tid` is the global that setup() set in this thread's Lua state.
  math.randomseed(os.time() * 1000 + tid)
  if GET_TOKEN then
    wrk.headers["Authorization"] = "Bearer " .. GET_TOKEN
  end
end

function request()
  return wrk.format("GET", PATHS[math.random(1, #PATHS)])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"non2xx":%d,"socket_errors":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
