-- refresh_token rotation chains. Each token may be used once (reuse revokes its family), so
-- every thread owns a pool of live tokens: request() takes one, response() puts the new one
-- back. wrk sends a connection's next request only after its response was handled, so with
-- more tokens than connections the pool never runs dry and no token is sent twice. (wrk calls
-- request() once more on thread 0 before it connects, to check the request: that token is
-- lost, so give every thread at least one spare.)
--   BENCH_TOKENS: file with one refresh token a line; BENCH_THREADS: wrk -t;
--   BENCH_AUTH: client authentication (Basic ...).
package.path = os.getenv("BENCH_WRK_DIR") .. "/?.lua;" .. package.path
require "report"

local counter = 0
local threads = {}

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local pool = {}
local auth = os.getenv("BENCH_AUTH")
local path
rejected = 0   -- 200 without a refresh_token
exhausted = 0  -- requests sent with no live token left (they fail, and wrk counts them)

function init(args)
   local nthreads = tonumber(os.getenv("BENCH_THREADS"))
   local i = 0
   for line in io.lines(os.getenv("BENCH_TOKENS")) do
      if line ~= "" then
         if i % nthreads == id then table.insert(pool, line) end
         i = i + 1
      end
   end
   path = wrk.path
end

function request()
   local token = table.remove(pool, 1)
   if token == nil then
      exhausted = exhausted + 1
      token = "pool-exhausted"
   end
   return wrk.format("POST", path, {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Authorization"] = auth,
   }, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
   local next = body:match('"refresh_token"%s*:%s*"([^"]+)"')
   if status == 200 and next then
      table.insert(pool, next)
   elseif status ~= 200 and not shown then
      shown = true
      io.stderr:write("refresh failed: " .. status .. " " .. body .. "\n")
   elseif status == 200 then
      rejected = rejected + 1
   end
end

function done(summary, latency, requests)
   local r, x = 0, 0
   for _, t in ipairs(threads) do
      r = r + (t:get("rejected") or 0)
      x = x + (t:get("exhausted") or 0)
   end
   if x > 0 then io.stderr:write("refresh: " .. x .. " requests found the token pool empty\n") end
   report(summary, latency, r)
end
