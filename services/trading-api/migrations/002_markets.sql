-- The markets of services/trading-api/markets.json (the shared source of
-- truth; keep in sync: a test compares GET /v1/markets with that file).
-- Minor units: prices at quote_scale 6, quantities at base_scale 8.
INSERT INTO markets (symbol, base, quote, base_scale, quote_scale, tick, lot,
                     min_qty, max_qty, min_price, max_price, band_bps, status)
VALUES
    ('BTC-USDT', 'BTC', 'USDT', 8, 6, 10000, 1000, 1000, 10000000000,
     10000, 10000000000000, 1000, 'trading'),
    ('ETH-USDT', 'ETH', 'USDT', 8, 6, 10000, 10000, 10000, 100000000000,
     10000, 1000000000000, 1000, 'trading')
ON CONFLICT (symbol) DO NOTHING;
