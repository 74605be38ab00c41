#!/bin/sh
# Runs the ferry-vs-OpenSSH benchmark (issue 8): builds ferry, then bench/cmd/ferrybench with the
# issue's defaults (1 GiB transfers, 2000 logins, 1,000 idle sessions, 1 GiB over a 50 ms
# relay; median of 3). FERRY_BENCH_QUICK=1 makes a smoke run of well under a minute. Extra
# arguments go to ferrybench (-h lists them). Needs root (tmpfs, user, cgroups), sshd and sftp.
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
mkdir -p bin
$GO build -o bin/ferry ./cmd/ferry
$GO build -o bin/ferrybench ./bench/cmd/ferrybench
exec bin/ferrybench -ferry bin/ferry -out bench/results "$@"
