#!/usr/bin/env bash
# Demo data for the catalog: a small category tree and a few dozen products.
# Idempotent (fixed ids, ON CONFLICT DO NOTHING): the lab runs it after every
# `make up`. Needs the schema, so run it once the service is ready (lab.sh does).
set -euo pipefail
: "${DATABASE_URL:?DATABASE_URL is required}"

psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -q -o /dev/null <<'SQL'
BEGIN;
INSERT INTO categories (id, name, parent_id) VALUES
    (1, 'Electronics', NULL),
    (2, 'Computers', 1),
    (3, 'Laptops', 2),
    (4, 'Accessories', 2),
    (5, 'Audio', 1),
    (6, 'Home', NULL),
    (7, 'Kitchen', 6),
    (8, 'Furniture', 6),
    (9, 'Books', NULL),
    (10, 'Programming', 9)
ON CONFLICT (id) DO NOTHING;

INSERT INTO products (id, name, description, category_id, price_cents, stock) VALUES
    (1,  'Ultrabook 13',            '13-inch laptop, 16 GB RAM',            3, 129900, 25),
    (2,  'Workstation 16',          '16-inch laptop for builds',            3, 249900, 10),
    (3,  'Chromebook 11',           'Small and light',                      3,  29999, 40),
    (4,  'USB-C Hub',               '7 ports, 100 W passthrough',           4,   4999, 200),
    (5,  'Mechanical Keyboard',     'Brown switches, 87 keys',              4,   8950, 120),
    (6,  'Wireless Mouse',          'Silent clicks',                        4,   2499, 300),
    (7,  '27" Monitor',             '1440p IPS',                            4,  31900, 35),
    (8,  'Laptop Stand',            'Aluminium',                            4,   3900, 80),
    (9,  'Noise-cancelling Headphones', 'Over-ear, 30 h battery',           5,  24900, 60),
    (10, 'Earbuds',                 'In-ear, USB-C case',                   5,   7900, 150),
    (11, 'Bookshelf Speakers',      'Pair, 2 x 40 W',                       5,  18900, 20),
    (12, 'Turntable',               'Belt drive',                           5,  21900, 12),
    (13, 'Chef''s Knife',           '20 cm, stainless',                     7,   5900, 70),
    (14, 'Cast Iron Pan',           '28 cm',                                7,   3450, 90),
    (15, 'Espresso Maker',          'Stovetop, 6 cups',                     7,   2999, 110),
    (16, 'Kettle',                  '1.7 l, temperature control',           7,   6900, 55),
    (17, 'Cutting Board',           'Oak',                                  7,   2450, 130),
    (18, 'Mug',                     'Stoneware, 350 ml',                    7,   1250, 500),
    (19, 'Desk',                    'Standing desk, 140 x 70 cm',           8,  44900, 8),
    (20, 'Office Chair',            'Mesh back',                            8,  27900, 15),
    (21, 'Bookcase',                '5 shelves',                            8,  11900, 20),
    (22, 'Floor Lamp',              'Dimmable LED',                         8,   7450, 45),
    (23, 'The C Programming Language', 'Kernighan & Ritchie',              10,   5500, 60),
    (24, 'Advanced Programming in the UNIX Environment', 'Stevens & Rago', 10,   7900, 30),
    (25, 'Designing Data-Intensive Applications', 'Kleppmann',             10,   4599, 75),
    (26, 'Site Reliability Engineering', 'Google SRE book',                10,   3999, 50),
    (27, 'The Pragmatic Programmer', '20th anniversary edition',           10,   4250, 40),
    (28, 'A Novel',                 'Paperback',                            9,   1499, 100),
    (29, 'Cookbook',                'Weeknight dinners',                    9,   2899, 65),
    (30, 'Atlas',                   'Hardcover world atlas',                9,   3999, 18),
    (31, 'HDMI Cable',              '2 m, 4K',                              4,    999, 400),
    (32, 'Webcam',                  '1080p',                                4,   5999, 70),
    (33, 'Portable Speaker',        'Waterproof',                           5,   4999, 85),
    (34, 'Toaster',                 '2 slots',                              7,   3999, 60),
    (35, 'Last One Standing',       'Demo product with a single unit',      6,   9999, 1),
    (36, 'Sold Out Lamp',           'Demo product without stock',           8,   4999, 0)
ON CONFLICT (id) DO NOTHING;

-- Fixed ids above: move the sequences past them so API inserts do not collide.
SELECT setval('categories_id_seq', GREATEST((SELECT max(id) FROM categories), 1));
SELECT setval('products_id_seq', GREATEST((SELECT max(id) FROM products), 1));
COMMIT;
SQL
echo "catalog: seeded $(psql "$DATABASE_URL" -qAt -c 'SELECT count(*) FROM products') products"
