-- wrk script for bench/serving.py: send one fixed request; report the run as one JSON line.
-- Usage: wrk -t1 -cN -dDs -s bench/wrk_request.lua URL -- BODY_FILE [METHOD]
-- The body is read once, in init; wrk then sends the same pre-built request on every connection,
-- so the client costs a few microseconds of CPU per request (C, epoll), not Python's ~0.8 ms.

function init(args)
  wrk.method = args[2] or "POST"
  if wrk.method ~= "GET" then
    local f = assert(io.open(args[1], "rb"))
    wrk.body = f:read("*a")
    f:close()
    wrk.headers["Content-Type"] = "application/json"
  end
end

-- Latency quantiles on a fine grid (µs), so several runs can be pooled into one distribution.
local function grid()
  local ps = {}
  for i = 1, 198 do ps[#ps + 1] = i * 0.5 end
  for i = 1, 9 do ps[#ps + 1] = 99 + i * 0.1 end
  for i = 1, 9 do ps[#ps + 1] = 99.9 + i * 0.01 end
  return ps
end

function done(summary, latency, requests)
  local e = summary.errors
  local qs = {}
  for _, p in ipairs(grid()) do
    qs[#qs + 1] = string.format("[%.2f, %d]", p, latency:percentile(p))
  end
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "max_us": %d, "mean_us": %.1f, '
      .. '"errors": {"status": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d}, '
      .. '"quantiles_us": [%s]}\n',
    summary.requests, summary.duration, latency.max, latency.mean, e.status, e.connect, e.read,
    e.write, e.timeout, table.concat(qs, ", ")))
end
