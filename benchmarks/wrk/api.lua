-- wrk script of the API benchmark (benchmarks/bench_api.py runs it; see `make wrk`).
--
-- Environment: WRK_KEY (API key), WRK_METHOD, WRK_PATH, and WRK_BODIES: a file with one JSON
-- body per line, sent in turn (each thread starts at its own offset), so every forecast body
-- differs.  done() prints one JSON line the benchmark parses: requests, seconds, latency
-- percentiles (ms) and errors (socket errors and non-2xx answers).

local key = os.getenv("WRK_KEY")
local method = os.getenv("WRK_METHOD") or "GET"
local path = os.getenv("WRK_PATH") or "/healthz"
local bodies_file = os.getenv("WRK_BODIES")
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  bodies = {}
  if bodies_file ~= nil and bodies_file ~= "" then
    for line in io.lines(bodies_file) do
      table.insert(bodies, line)
    end
  end
  i = (id or 0) * 7
  headers = { ["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json" }
end

function request()
  if #bodies == 0 then
    return wrk.format(method, path, headers)
  end
  i = i + 1
  return wrk.format(method, path, headers, bodies[(i % #bodies) + 1])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.6f, "p50_ms": %.3f, "p99_ms": %.3f, "connect": %d, ' ..
    '"read": %d, "write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3, e.connect, e.read, e.write, e.status, e.timeout))
end
