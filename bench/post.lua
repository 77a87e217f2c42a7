-- wrk script: POST 1 KB structured CloudEvents (the same event as bench/loadgen.py), each with
-- its own id, and print one JSON line at the end: requests answered, 2xx among them, seconds.
--   wrk -t1 -c32 -d15s -s bench/post.lua http://127.0.0.1:PORT/events
-- WRK_PREFIX (environment) starts every id, so runs against one store never collide.
-- WRK_KEYS=N gives the events a partitionkey among N values (k0 .. kN-1), in turn.

local prefix = os.getenv("WRK_PREFIX") or "w"
local keys = tonumber(os.getenv("WRK_KEYS") or "0")
local pad = string.rep("x", 760)
local threads = {}
local counter = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/cloudevents+json"

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function request()
  counter = counter + 1
  local key = ""
  if keys > 0 then
    key = string.format('"partitionkey":"k%d",', counter % keys)
  end
  local body = string.format(
    '{"specversion":"1.0",%s"id":"%s-%d-%d","source":"/bench/shop",' ..
    '"type":"bench.order.created","datacontenttype":"application/json",' ..
    '"time":"2026-01-01T00:00:00Z",' ..
    '"data":{"order_id":"o-%d","customer":"c-1","amount":1299,"currency":"EUR",' ..
    '"items":[{"sku":"sku-1","quantity":2,"price":500},{"sku":"sku-2","quantity":1,' ..
    '"price":299}],"note":"%s"}}', key, prefix, tid, counter, counter, pad)
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"non2xx":%d,"socket_errors":%d,"seconds":%.3f}\n',
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout,
    summary.duration / 1e6))
end
