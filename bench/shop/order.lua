-- wrk script for POST /orders: a unique Idempotency-Key per request (so every
-- request creates an order) and one user per wrk thread (ids are digits).
-- SHOP_BENCH_PRODUCTS: "lo-hi" spreads orders over product ids lo..hi
-- (default "18-18": every order for the same product, the hot-row case).
local threads = 0

function setup(thread)
    thread:set("tid", threads)
    threads = threads + 1
end

function init(args)
    math.randomseed(os.time() + tid * 7919)
    prefix = string.format("bench-%d-%d-", tid, math.random(1, 1000000000))
    n = 0
    local range = os.getenv("SHOP_BENCH_PRODUCTS") or "18-18"
    lo, hi = range:match("^(%d+)-(%d+)$")
    lo, hi = tonumber(lo), tonumber(hi)
end

function request()
    n = n + 1
    local product = math.random(lo, hi)
    local body = '{"items":[{"product_id":"' .. product .. '","quantity":1}],' ..
                 '"shipping_address":{"name":"Bench","line1":"1 Loop St","city":"Localhost",' ..
                 '"postal_code":"12345","country":"DE"}}'
    return wrk.format("POST", "/orders", {
        ["Content-Type"] = "application/json",
        ["X-User-Id"] = tostring(900000 + tid),
        ["Idempotency-Key"] = prefix .. n,
    }, body)
end
