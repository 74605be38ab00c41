package password

import (
	"errors"
	"testing"
)

// FuzzVerifyHash feeds arbitrary stored hashes and passwords to Verify. It
// must never panic, and the cost bounds keep every input to well under a
// second (the fuzzer's own timeout catches an unbounded loop).
func FuzzVerifyHash(f *testing.F) {
	for _, tc := range knownAnswers {
		f.Add(tc.hash, tc.password)
	}
	f.Add("$6$rounds=1000000$x$", "")
	f.Add("$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8", "a")
	f.Add("$2y$04$", "")
	f.Add("$5$$", "")
	f.Fuzz(func(t *testing.T, hash, password string) {
		ok, rehash, err := Verify(hash, password)
		if err != nil && (ok || rehash) {
			t.Fatalf("Verify(%q) = %v, %v with error %v", hash, ok, rehash, err)
		}
		if !ok && rehash {
			t.Fatalf("Verify(%q): needsRehash without a match", hash)
		}
		NeedsRehash(hash)
		// Check is Verify's parser without the work: they must agree on
		// which hashes are usable.
		checkErr := Check(hash)
		if err == nil && checkErr != nil {
			t.Fatalf("Verify accepted %q but Check says %v", hash, checkErr)
		}
		if checkErr == nil && err != nil && !errors.Is(err, ErrPasswordTooLong) {
			t.Fatalf("Check accepted %q but Verify says %v", hash, err)
		}
	})
}
