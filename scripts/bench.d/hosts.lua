-- wrk script: every request asks for a random host of the benchmark's set, so the lookups
-- are spread over many keys. Arguments (after "--"): HOSTS file ("host<TAB>brand"), seed.
local requests = {}

function init(args)
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do
    local host = line:match("^[^\t]+")
    requests[#requests + 1] = "GET / HTTP/1.1\r\nHost: " .. host .. "\r\n\r\n"
  end
  f:close()
  assert(#requests > 0, "no hosts in " .. args[1])
  math.randomseed(tonumber(args[2] or "1"))
end

function request()
  return requests[math.random(#requests)]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d " ..
    "p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
