-- One fixed request, from the environment:
--   BENCH_METHOD (GET), BENCH_BODY (form body, sent as x-www-form-urlencoded),
--   BENCH_AUTH (Authorization header value).
package.path = os.getenv("BENCH_WRK_DIR") .. "/?.lua;" .. package.path
require "report"

wrk.method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
if body and body ~= "" then
   wrk.body = body
   wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
   wrk.headers["Authorization"] = auth
end

function done(summary, latency, requests)
   report(summary, latency, 0)
end
