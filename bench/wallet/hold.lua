-- wrk script for bench/wallet.sh: POST /internal/holds with a unique hold
-- id per request, over the 100 users bench/wallet.sh funds (1000..1099),
-- paced per connection so conns connections offer about RATE holds/s:
-- wrk -s hold.lua ... -- RATE CONNS
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local counter = 0
local pace_ms = 0

function setup(thread)
    counter = counter + 1
    thread:set("tid", counter)
end

function init(args)
    local rate = tonumber(args[1] or "2000")
    local conns = tonumber(args[2] or "32")
    pace_ms = conns * 1000 / rate
    n = 0
    prefix = string.format("wrk-%d-%d-", tid or 0, math.random(1, 1000000000))
end

function delay()
    return pace_ms
end

function request()
    n = n + 1
    local body = string.format(
        '{"hold_id":"%s%d","user_id":"%d","asset":"USDT","amount":"0.010000"}',
        prefix, n, 1000 + n % 100)
    return wrk.format(nil, "/internal/holds", nil, body)
end

function done(summary, latency, requests)
    io.stderr:write(string.format("holds: %d requests in %.1fs (%.0f/s), %d errors, p50 %.2f ms, p99 %.2f ms\n",
        summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
        summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
        latency:percentile(50) / 1000, latency:percentile(99) / 1000))
    io.write(string.format("%.2f\n", latency:percentile(99) / 1000))
end
