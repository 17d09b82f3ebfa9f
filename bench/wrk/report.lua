-- Shared by the wrk scripts of bench/run: prints one JSON line that bench/run parses.
-- Latencies are wrk's, in microseconds; "errors" = socket errors + timeouts + HTTP >= 400
-- (wrk counts 4xx/5xx in errors.status) + responses the script itself rejected.
-- `units`, when given, is what the case counts instead of requests (code.lua: exchanges of
-- two requests each); rps is then units/s.
function report(summary, latency, extra_errors, units)
   local e = summary.errors
   local errors = e.connect + e.read + e.write + e.timeout + e.status + (extra_errors or 0)
   units = units or summary.requests
   io.write(string.format(
      'BENCH {"requests":%d,"units":%d,"duration_us":%d,"rps":%.1f,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
      '"errors":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d,"rejected":%d}\n',
      summary.requests, units, summary.duration, units / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(99), latency.max,
      errors, e.connect, e.read, e.write, e.timeout, e.status, extra_errors or 0))
end
