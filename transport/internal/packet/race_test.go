//go:build race

package packet

// raceEnabled: the race detector changes inlining and escape analysis, so
// allocation counts are only meaningful without it.
const raceEnabled = true
