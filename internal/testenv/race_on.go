//go:build race

package testenv

// RaceEnabled reports whether the test binary was built with -race. Under
// the race detector the test process itself runs several times slower, so
// a test comparing throughput measured from it compares the detector's
// overhead, not the server; such assertions hold in the plain run of
// make test and only log under -race.
const RaceEnabled = true
