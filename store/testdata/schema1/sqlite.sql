-- ferry account store at schema version 1 (SQLite), as ferry 441eac8 (the last
-- release before schema version 2) left it: made with that binary's ferry user add/import
-- and logins through its server (see store/upgrade_test.go), then sqlite3 .dump.
-- Never edit: it is what real old databases hold.
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE schema_migrations (
		version    BIGINT PRIMARY KEY,
		name       TEXT   NOT NULL,
		applied_at BIGINT NOT NULL);
INSERT INTO schema_migrations VALUES(1,'0001_accounts.sql',1795568868);
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
INSERT INTO accounts VALUES(1,'pw1','$argon2id$v=19$m=19456,t=2,p=1$mAfUtGT9g2yLiANQ1FXqyA$K7YooaheP8Y8QHQ9460y9vNUKWviXEANAM3eiP9spis','',1,NULL,'',0,0,0,0,0,0,0,0,0,0,0,0,'',NULL,NULL,'',1795568868,1795568868,1795568891);
INSERT INTO accounts VALUES(2,'key1',NULL,'',1,NULL,'',0,0,0,0,0,0,0,0,0,0,0,0,'',NULL,NULL,'',1795568868,1795568868,NULL);
INSERT INTO accounts VALUES(3,'opt1',NULL,'',1,NULL,'',0,0,0,0,0,0,0,0,0,0,0,0,'',NULL,NULL,'',1795568868,1795568868,NULL);
INSERT INTO accounts VALUES(4,'quota1','$argon2id$v=19$m=19456,t=2,p=1$m/s+TEV/CQnIL1Ts5TOT6Q$2uq4o6GWWZDvpTmKLNYwfOT4bQnNB57c01LwZwjt8i0','',1,NULL,'',0,0,1,0,1,0,0,10485760,100,6000000,2,0,'',NULL,NULL,'',1795568868,1795568868,1795568892);
INSERT INTO accounts VALUES(5,'dis1','$argon2id$v=19$m=19456,t=2,p=1$8IDHTgSSQ5Z0AV6Kr3qzmw$x9I+72nM0Gr9Bt9Ku3fw4Ap4b1qmP/uZ3bCpMAgQX9E','',0,NULL,'',0,0,0,0,0,0,0,0,0,0,0,0,'',NULL,NULL,'',1795568868,1795568868,NULL);
INSERT INTO accounts VALUES(6,'exp1','$argon2id$v=19$m=19456,t=2,p=1$TEDnjDSXJLfSr+iwy2GWbg$xLzEObEl3ULyUa+tYkRNNl4Wgv5b2SnguoLh9kfD5+s','',1,1577836800,'',0,0,0,0,0,0,0,0,0,0,0,0,'',NULL,NULL,'',1795568868,1795568868,NULL);
INSERT INTO accounts VALUES(7,'fut1','$argon2id$v=19$m=19456,t=2,p=1$I6o09E1J3UQcg7cp1vmZEA$Pdw35BawLsfq5LqYhLrn7DXDhtvidonkdjtpoBdzSeQ','',1,4070908800,'',1,0,0,0,0,0,0,0,0,0,0,3,'127.0.0.0/8',NULL,NULL,'',1795568869,1795568869,1795568891);
INSERT INTO accounts VALUES(8,'sh1','$argon2id$v=19$m=19456,t=2,p=1$Lx8gU190PMqMemDJ9D/jXQ$GP/igkIZ0HXEhAFZSW2WV3HwPJFzIOUckDy+cD16rFU','',1,NULL,'password',0,0,0,0,0,1,0,0,0,0,0,0,'',12345,12345,'echo hello-forced',1795568869,1795568869,1795568892);
INSERT INTO accounts VALUES(9,'caacct',NULL,'',1,NULL,'',0,0,0,0,0,0,0,0,0,0,0,0,'',NULL,NULL,'',1795568869,1795568869,NULL);
INSERT INTO accounts VALUES(10,'imp6','$6$L6PLCCEuMzPp1XSj$QNDjW4KI5swP/WN8HF1ZFeBtfXUzpjTX0/33vK8aiE9vG7aaRUj9XF.lNP1IkRVCh/WYIARklW.AVRhO2FwmW.','',1,NULL,'',0,0,0,0,0,0,0,0,0,0,0,0,'',NULL,NULL,'',1795568869,1795568869,NULL);
INSERT INTO accounts VALUES(11,'impb','$2b$10$IJwbYdNUcir5LEWZFM712OvzUWlTJ01G3yfHAza9qH0EbRR4JEf/K','',1,NULL,'',0,0,0,0,0,0,0,0,0,0,0,0,'',NULL,NULL,'',1795568869,1795568869,NULL);
INSERT INTO accounts VALUES(12,'impm','$1$q8eIzatZ$ecv8Txc7xTasCjt1SjcW31','',1,NULL,'',0,0,0,0,0,0,0,0,0,0,0,0,'',NULL,NULL,'',1795568869,1795568869,NULL);
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
INSERT INTO authorized_keys VALUES(1,2,'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGVAxHj7IWR0u4/cMDzC8KPkJsgolOQAUXZggB+yvJaN user_ed','SHA256:Zf8kWqQpvkLLHQOYW53H0r2vS5KRzSSS1vjbVrBT1lc','ssh-ed25519','user_ed',1795568868);
INSERT INTO authorized_keys VALUES(2,3,'from="127.0.0.1,::1",no-pty,environment="X=1",command="echo forced-opt" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIbzG8PIaaPnC4OK/lYPlWGPv1O00ZiERQDdTUP2B0nd opt_ed','SHA256:VJe8H9PD650dSYL4ky7AH/HzJtj4ap2v+eMtQs3+18E','ssh-ed25519','opt_ed',1795568868);
INSERT INTO authorized_keys VALUES(3,9,'cert-authority,principals="caacct" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHKMWU9iKpx1Frv6LpHYLfXEAi9OEqUuStUHDckvFWKt ca','SHA256:Jih9wpSNaACBejRAfG5By9SXAmvEMFMLvbf3mibkzzk','ssh-ed25519','ca',1795568869);
DELETE FROM sqlite_sequence;
INSERT INTO sqlite_sequence VALUES('accounts',12);
INSERT INTO sqlite_sequence VALUES('authorized_keys',3);
COMMIT;
