// Package e2e holds end-to-end tests that build the real ferry binary, start
// "ferry serve" on 127.0.0.1 with a temporary data directory and drive it
// with real clients: OpenSSH sftp/scp/ssh, PuTTY psftp, curl (libssh2),
// paramiko and github.com/pkg/sftp. It has no non-test code.
package e2e
