-- Authorization code exchange: each exchange is two requests, GET authorize with a signed-in
-- browser's cookies (its SSO session answers with a 302 carrying a new code, no page) and
-- POST token (that code + the PKCE verifier). request() sends a token request when this
-- thread holds a code, an authorize otherwise; response() keeps the code of each 302. Every
-- code is sent once, right after it was issued (codes live 60 s). The authorize requests go
-- round the browsers: gatehouse lets one SSO session open apps 60 times a minute, so
-- bench/run signs in enough of them for the rate it expects (BENCH_CODE_SESSIONS).
--   BENCH_SESSION: the JSON file `node login.mjs session` wrote (cookies, authorize, token,
--   verifier, redirect_uri); BENCH_AUTH: client authentication (Basic ...).
-- The reported rps is exchanges/s (token responses with an id_token); the latencies are
-- wrk's, over both kinds of request.
package.path = os.getenv("BENCH_WRK_DIR") .. "/?.lua;" .. package.path
require "report"

local counter = 0
local threads = {}

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

-- The session file is written by login.mjs with JSON.stringify: string values and one array
-- of strings, none holding a quote, backslash or bracket (login.mjs checks), so patterns
-- read it.
local function field(json, name)
   local v = json:match('"' .. name .. '"%s*:%s*"([^"]*)"')
   if not v then error("code.lua: no " .. name .. " in BENCH_SESSION") end
   return v
end

local function urlencode(s)
   return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local codes = {}
local authorize_reqs, next_session = {}, 0
local token_path, token_headers, body_tail
exchanged = 0  -- token responses with an id_token
rejected = 0   -- an authorize that did not redirect with a code, or a 200 without an id_token

function init(args)
   local f = assert(io.open(os.getenv("BENCH_SESSION"), "r"))
   local json = f:read("*a")
   f:close()
   local authorize = field(json, "authorize")
   local list = json:match('"cookies"%s*:%s*%[(.-)%]')
   if not list then error("code.lua: no cookies in BENCH_SESSION") end
   for cookie in list:gmatch('"([^"]*)"') do
      table.insert(authorize_reqs, wrk.format("GET", authorize, {
         ["Cookie"] = cookie,
         ["User-Agent"] = "gatehouse-bench",
      }))
   end
   if #authorize_reqs == 0 then error("code.lua: no cookies in BENCH_SESSION") end
   -- Threads start at different browsers.
   next_session = id % #authorize_reqs
   token_path = field(json, "token")
   token_headers = {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Authorization"] = os.getenv("BENCH_AUTH"),
   }
   body_tail = "&redirect_uri=" .. urlencode(field(json, "redirect_uri")) ..
      "&code_verifier=" .. urlencode(field(json, "verifier"))
end

function request()
   local code = table.remove(codes)
   if code == nil then
      next_session = next_session % #authorize_reqs + 1
      return authorize_reqs[next_session]
   end
   return wrk.format("POST", token_path, token_headers,
      "grant_type=authorization_code&code=" .. urlencode(code) .. body_tail)
end

local function unescape(s)
   return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

function response(status, headers, body)
   if status == 302 or status == 303 then
      local location = headers["Location"] or headers["location"] or ""
      local code = location:match("[?&]code=([^&#]+)")
      if code then
         table.insert(codes, unescape(code))
      else
         rejected = rejected + 1
         if not shown then shown = true; io.stderr:write("authorize without a code: " .. location .. "\n") end
      end
   elseif status == 200 then
      if body:find('"id_token"', 1, true) then
         exchanged = exchanged + 1
      else
         rejected = rejected + 1
         if not shown then shown = true; io.stderr:write("unexpected 200: " .. body:sub(1, 200) .. "\n") end
      end
   elseif not shown then
      shown = true
      io.stderr:write("code exchange failed: " .. status .. " " .. body:sub(1, 200) .. "\n")
   end
end

function done(summary, latency, requests)
   local r, x = 0, 0
   for _, t in ipairs(threads) do
      r = r + (t:get("rejected") or 0)
      x = x + (t:get("exchanged") or 0)
   end
   report(summary, latency, r, x)
end
