/**
 * Lua code run once per engine, before the plugin script is compiled. It receives the host functions table and
 * returns `bind, LAZY_MT, LAZY_IDS, ARRAYS`:
 * - `bind(chunk)` gives the dispatcher the engine calls for every hook. Each call runs the compiled chunk in a fresh
 *   global table, so globals a script sets during one request are gone for the next;
 * - the script sees only a whitelisted base (no io, os.execute, require, load, dofile, package, debug,
 *   collectgarbage, string.dump); library tables are handed out as per-call read-only views, so a script cannot
 *   change them for later requests either (`__gc` is refused for the same reason: finalizers run whenever);
 * - `ctx` is a lazy read-only view of the JS RequestFacts: fields are fetched from JS on first access;
 * - http.client suspends the coroutine (`yield`) while the JS side performs the request.
 */
export const PRELUDE = String.raw`
local H = ...
local setmetatable, getmetatable, rawget, rawset, rawequal, rawlen = setmetatable, getmetatable, rawget, rawset, rawequal, rawlen
local type, next, select, error, tostring = type, next, select, error, tostring
local setupvalue = debug.setupvalue
local yield, isyieldable = coroutine.yield, coroutine.isyieldable
local concat = table.concat

-- Tables that json.encode must write as arrays even when empty.
local ARRAYS = setmetatable({}, { __mode = "k" })

-- ctx: lazily materialised views of JS objects, keyed by the id the host gave them for this call.
local LAZY_IDS = setmetatable({}, { __mode = "k" })
local LAZY_MT = { __metatable = false }
local factsGet, factsLen, factsKeys = H.factsGet, H.factsLen, H.factsKeys
local function lazy(id)
  local t = setmetatable({}, LAZY_MT)
  LAZY_IDS[t] = id
  return t
end
LAZY_MT.__index = function(t, k)
  local v, child = factsGet(LAZY_IDS[t], k)
  if child ~= nil then v = lazy(child) end
  if v ~= nil then rawset(t, k, v) end
  return v
end
LAZY_MT.__newindex = function() error("ctx is read-only", 2) end
LAZY_MT.__len = function(t) return factsLen(LAZY_IDS[t]) end
LAZY_MT.__pairs = function(t)
  local keys, i = factsKeys(LAZY_IDS[t]), 0
  return function()
    i = i + 1
    local k = keys[i]
    if k ~= nil then return k, t[k] end
  end, t, nil
end

local function readonly(src)
  local mt = { __metatable = false }
  mt.__index = function(p, k)
    local v = src[k]
    if type(v) == "table" then
      v = readonly(v)
      rawset(p, k, v)
    end
    return v
  end
  mt.__newindex = function() error("attempt to modify a read-only table", 2) end
  mt.__len = function() return #src end
  mt.__pairs = function(p)
    local k
    return function()
      local v
      k, v = next(src, k)
      if k ~= nil then return k, p[k] end
    end, p, nil
  end
  return setmetatable({}, mt)
end

local function safeSetmetatable(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("__gc metamethods are not allowed in plugins", 2)
  end
  return setmetatable(t, mt)
end

local function print_(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  H.log(concat(parts, "\t"))
end

local json = {
  decode = H.jsonDecode,
  encode = H.jsonEncode,
  isSchemaValid = H.jsonIsSchemaValid,
  null = H.null,
}
function json.array(t)
  t = t or {}
  ARRAYS[t] = true
  return t
end

-- http.client(): methods live apart from the metatables so scripts cannot reach (and alter) the shared tables.
local CLIENT, REQUEST, RESPONSE = {}, {}, {}
local CLIENT_MT = { __index = CLIENT, __metatable = false }
local REQUEST_MT = { __index = REQUEST, __metatable = false }
local RESPONSE_MT = { __index = RESPONSE, __metatable = false }

local function joinURL(base, path)
  if type(path) ~= "string" then error("http request path must be a string", 4) end
  if path:find("^%a[%w+.-]*://") or base == nil or base == "" then return path end
  local slashEnd, slashStart = base:sub(-1) == "/", path:sub(1, 1) == "/"
  if slashEnd and slashStart then return base .. path:sub(2) end
  if not slashEnd and not slashStart and path ~= "" then return base .. "/" .. path end
  return base .. path
end

local function send(req, method, path)
  if not isyieldable() then
    error("http.client cannot be used here (only directly from onRequest/onResponse code)", 3)
  end
  local client = req._client
  local headers = {}
  for k, v in next, client._headers do headers[k] = v end
  for k, v in next, req._headers do headers[k] = v end
  H.httpStart(method, joinURL(client._base, path), headers, req._body)
  local code, body, err = yield()
  if code == nil then return nil, err end
  return setmetatable({ _code = code, _body = body }, RESPONSE_MT)
end

function CLIENT.setBaseURL(self, url) self._base = url; return self end
function CLIENT.setHeader(self, k, v) self._headers[k] = v; return self end
function CLIENT.request(self) return setmetatable({ _client = self, _headers = {} }, REQUEST_MT) end
function REQUEST.setBody(self, body) self._body = body; return self end
function REQUEST.setHeader(self, k, v) self._headers[k] = v; return self end
function REQUEST.get(self, path) return send(self, "GET", path) end
function REQUEST.post(self, path) return send(self, "POST", path) end
function REQUEST.put(self, path) return send(self, "PUT", path) end
function REQUEST.patch(self, path) return send(self, "PATCH", path) end
function REQUEST.delete(self, path) return send(self, "DELETE", path) end
function RESPONSE.code(self) return self._code end
function RESPONSE.body(self) return self._body end

local function newClient()
  return setmetatable({ _base = "", _headers = {} }, CLIENT_MT)
end

local BASE = {
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs, pcall = pcall, xpcall = xpcall,
  rawequal = rawequal, rawget = rawget, rawlen = rawlen, rawset = rawset, select = select,
  getmetatable = getmetatable, setmetatable = safeSetmetatable, tonumber = tonumber, tostring = tostring,
  type = type, print = print_, _VERSION = _VERSION,
  string = string, table = table, math = math, utf8 = utf8, coroutine = coroutine,
  os = { time = os.time, clock = os.clock },
  json = json,
  http = { client = newClient },
  octelium = {
    req = {
      getRequestBody = H.reqGetBody, setRequestBody = H.reqSetBody, exit = H.reqExit,
      getRequestHeader = H.reqGetHeader, setRequestHeader = H.reqSetHeader, deleteRequestHeader = H.reqDeleteHeader,
      getPath = H.reqGetPath, setPath = H.reqSetPath, getMethod = H.reqGetMethod,
    },
    resp = {
      getResponseBody = H.respGetBody, setResponseBody = H.respSetBody,
      getResponseHeader = H.respGetHeader, setResponseHeader = H.respSetHeader, deleteResponseHeader = H.respDeleteHeader,
      getStatusCode = H.respGetStatus, setStatusCode = H.respSetStatus,
    },
  },
}

local ENV_MT = { __metatable = false }
ENV_MT.__index = function(env, k)
  if k == "_G" then return env end
  local v = BASE[k]
  if type(v) == "table" then
    v = readonly(v)
    rawset(env, k, v)
  end
  return v
end

local function bind(chunk)
  return function(hook, probe)
    local env = setmetatable({}, ENV_MT)
    setupvalue(chunk, 1, env)
    chunk()
    local fn = rawget(env, hook)
    if probe then return type(fn) == "function" end
    if fn == nil then return false end
    fn(lazy(0))
    return true
  end
end

-- The real globals are unreachable from scripts already; drop the dangerous ones anyway (defence in depth).
string.dump = nil
getmetatable("").__metatable = false
for _, name in ipairs({ "io", "os", "debug", "package", "require", "dofile", "loadfile", "load", "collectgarbage" }) do
  _G[name] = nil
end

return bind, LAZY_MT, LAZY_IDS, ARRAYS
`;
