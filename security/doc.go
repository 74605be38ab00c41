// Package security holds ferry's attack probes and robustness tests. They
// run against the real `ferry serve` binary, built once per test run, and
// drive the protocol by hand with transport.Client (or raw bytes below the
// transport, for Terrapin), so a probe sees exactly what an attacker would.
//
// Each test names the attack or CVE class it covers and asserts the exact
// outcome: the DISCONNECT reason code, that nothing ran, and that the
// server still serves a legitimate client afterwards.
package security
