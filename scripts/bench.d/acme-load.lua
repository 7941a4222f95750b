-- wrk script for the ACME benchmark's background load: every request asks for one portal
-- domain, and each connection waits DELAY ms before each request, so that the load stays
-- near connections * 1000 / DELAY requests per second instead of taking every core.
-- Arguments (after "--"): HOST, DELAY (ms). wrk stops on SIGINT and prints the BENCH line.
local req, pause

function init(args)
  req = "GET / HTTP/1.1\r\nHost: " .. assert(args[1], "no host") .. "\r\n\r\n"
  pause = tonumber(args[2] or "0")
end

function request()
  return req
end

function delay()
  return pause
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d " ..
    "p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
