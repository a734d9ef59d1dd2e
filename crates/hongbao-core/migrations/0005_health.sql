-- One row that the health check writes to learn whether writes work again
-- after a full disk or a read-only file.
CREATE TABLE write_probe (
    id INTEGER PRIMARY KEY,
    probed_at BIGINT NOT NULL
);
