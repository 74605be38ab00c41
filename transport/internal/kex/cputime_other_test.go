//go:build !unix

package kex

func processCPU() (int64, bool) { return 0, false }
