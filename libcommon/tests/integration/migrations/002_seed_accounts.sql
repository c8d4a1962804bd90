-- Applied twice it would fail (unique name): proves "exactly once".
INSERT INTO accounts (name, balance) VALUES ('seed', 100);
