-- Web sign-in: sessions live in the database, so any server accepts them, and failed
-- sign-ins are counted here, so throttling holds across servers.

-- A signed-in browser. Only a hash of the session cookie is stored; csrf is the token
-- every form of the session carries. A session ends at expires_at, or when it has not been
-- seen for the idle time the application sets.
CREATE TABLE web_sessions (
    token_hash   TEXT    PRIMARY KEY,
    user_id      BIGINT  NOT NULL REFERENCES staff_users(id) ON DELETE CASCADE,
    csrf         TEXT    NOT NULL,
    lang         TEXT,
    created_at   BIGINT  NOT NULL,
    last_seen_at BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);

-- One row per failed sign-in, keyed by the email tried and by the client address.
CREATE TABLE login_failures (
    id  INTEGER PRIMARY KEY,
    key TEXT    NOT NULL,
    at  BIGINT  NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (key, at);

-- A staff member's language for the web application.
ALTER TABLE staff_users ADD COLUMN lang TEXT;
