-- ferry account store, schema version 1 (SQLite).
-- Keep in step with ../postgres/0001_accounts.sql: same tables, columns,
-- meanings. Times are Unix seconds; NULL means "never"/"none".
CREATE TABLE accounts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT    NOT NULL UNIQUE,
    password_hash    TEXT, -- argon2id PHC string, or an imported $2a$/$2b$/$2y$/$5$/$6$/$1$ hash (upgraded at next login); NULL = no password
    home             TEXT    NOT NULL DEFAULT '', -- absolute path; '' = <data-dir>/home/<name>
    enabled          INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    expires_at       INTEGER, -- Unix seconds; logins fail from then on; NULL = never
    auth_methods     TEXT    NOT NULL DEFAULT '', -- sshd AuthenticationMethods syntax, e.g. 'publickey,password publickey'; '' = server default
    read_only        INTEGER NOT NULL DEFAULT 0 CHECK (read_only IN (0, 1)),
    upload_only      INTEGER NOT NULL DEFAULT 0 CHECK (upload_only IN (0, 1)),
    no_delete        INTEGER NOT NULL DEFAULT 0 CHECK (no_delete IN (0, 1)),
    no_overwrite     INTEGER NOT NULL DEFAULT 0 CHECK (no_overwrite IN (0, 1)),
    allow_symlinks   INTEGER NOT NULL DEFAULT 0 CHECK (allow_symlinks IN (0, 1)),
    allow_shell      INTEGER NOT NULL DEFAULT 0 CHECK (allow_shell IN (0, 1)),
    allow_forwarding INTEGER NOT NULL DEFAULT 0 CHECK (allow_forwarding IN (0, 1)),
    quota_bytes      INTEGER NOT NULL DEFAULT 0 CHECK (quota_bytes >= 0), -- 0 = unlimited (also quota_files)
    quota_files      INTEGER NOT NULL DEFAULT 0 CHECK (quota_files >= 0),
    used_bytes       INTEGER NOT NULL DEFAULT 0 CHECK (used_bytes >= 0), -- maintained by the servers (AddUsage); also used_files
    used_files       INTEGER NOT NULL DEFAULT 0 CHECK (used_files >= 0),
    max_sessions     INTEGER NOT NULL DEFAULT 0 CHECK (max_sessions >= 0), -- 0 = server default
    allow_from       TEXT    NOT NULL DEFAULT '', -- comma-separated CIDRs or addresses; '' = anywhere
    uid              INTEGER CHECK (uid BETWEEN 0 AND 4294967295), -- system uid/gid for shell sessions; NULL = none
    gid              INTEGER CHECK (gid BETWEEN 0 AND 4294967295),
    force_command    TEXT    NOT NULL DEFAULT '', -- '' = none
    created_at       INTEGER NOT NULL DEFAULT (unixepoch()),
    updated_at       INTEGER NOT NULL DEFAULT (unixepoch()),
    last_login_at    INTEGER
);

CREATE TABLE authorized_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    line        TEXT    NOT NULL, -- canonical authorized_keys line (options, type, base64, comment)
    fingerprint TEXT    NOT NULL, -- 'SHA256:...' as ssh-keygen -l prints
    key_type    TEXT    NOT NULL,
    comment     TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL DEFAULT (unixepoch()),
    UNIQUE (account_id, fingerprint)
);
