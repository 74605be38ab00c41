package packet

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"testing"

	"github.com/ferry-sftp/ferry/internal/testenv"
)

type peerJob struct {
	Cipher string   `json:"cipher"`
	MAC    string   `json:"mac"`
	Key    string   `json:"key"`
	IV     string   `json:"iv"`
	MACKey string   `json:"mackey"`
	Zlib   bool     `json:"zlib"`
	Decode string   `json:"decode"`
	Count  int      `json:"count"`
	Encode []string `json:"encode"`
}

type peerResult struct {
	Decoded []string `json:"decoded"`
	Encoded string   `json:"encoded"`
	Error   string   `json:"error"`
}

// TestInteropParamiko exchanges packets with paramiko's Packetizer (pure
// Python framing over OpenSSL's ciphers, Python's hmac and C zlib) in both
// directions, for every cipher×MAC pair paramiko implements, with and
// without compression.
func TestInteropParamiko(t *testing.T) {
	py := testenv.SystemPython(t, "paramiko")
	ciphers := []string{"aes128-ctr", "aes192-ctr", "aes256-ctr", "aes128-cbc", "aes192-cbc", "aes256-cbc", "3des-cbc"}
	macs := []string{"hmac-sha2-256", "hmac-sha2-512", "hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "hmac-sha1", "hmac-sha1-96", "hmac-md5", "hmac-md5-96"}
	rng := rand.New(rand.NewPCG(4253, 5647))
	var jobs []peerJob
	var ours [][][]byte   // payloads we sealed, per job
	var theirs [][][]byte // payloads paramiko sealed, per job
	for _, c := range ciphers {
		for _, m := range macs {
			for _, z := range []bool{false, true} {
				p := pair{c, m}
				k := testKeys(t, p, 3)
				var stream bytes.Buffer
				w := NewWriter(&stream)
				if err := w.SetCipher(c, m, k); err != nil {
					t.Fatal(err)
				}
				if z {
					w.SetCompression("zlib")
				}
				var sent, recv [][]byte
				var enc []string
				for _, n := range []int{1, 5, 16, 100, 1000, 40000} {
					pl := randPayload(rng, n)
					if n == 1000 {
						pl = bytes.Repeat([]byte("\x5ecompressible "), 70)
					}
					if err := w.WritePacket(pl); err != nil {
						t.Fatal(err)
					}
					sent = append(sent, pl)
					in := randPayload(rng, n)
					recv = append(recv, in)
					enc = append(enc, hex.EncodeToString(in))
				}
				w.Flush()
				jobs = append(jobs, peerJob{Cipher: c, MAC: m, Key: hex.EncodeToString(k.Key), IV: hex.EncodeToString(k.IV),
					MACKey: hex.EncodeToString(k.MACKey), Zlib: z, Decode: hex.EncodeToString(stream.Bytes()), Count: len(sent), Encode: enc})
				ours = append(ours, sent)
				theirs = append(theirs, recv)
			}
		}
	}
	in, _ := json.Marshal(jobs)
	cmd := exec.Command(py, "testdata/paramiko_peer.py")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("paramiko peer: %v\n%s", err, stderr.String())
	}
	var results []peerResult
	if err := json.Unmarshal(out, &results); err != nil || len(results) != len(jobs) {
		t.Fatalf("paramiko peer output: %v (%d results for %d jobs)", err, len(results), len(jobs))
	}
	for i, res := range results {
		j := jobs[i]
		name := fmt.Sprintf("%s+%s zlib=%v", j.Cipher, j.MAC, j.Zlib)
		if res.Error != "" {
			t.Errorf("%s: paramiko: %s", name, res.Error)
			continue
		}
		if len(res.Decoded) != len(ours[i]) {
			t.Errorf("%s: paramiko decoded %d packets, want %d", name, len(res.Decoded), len(ours[i]))
		}
		for n, h := range res.Decoded {
			if h != hex.EncodeToString(ours[i][n]) {
				t.Errorf("%s: paramiko decoded packet %d differently", name, n)
			}
		}
		stream, _ := hex.DecodeString(res.Encoded)
		r := NewReader(bytes.NewReader(stream))
		r.SetCipher(j.Cipher, j.MAC, testKeys(t, pair{j.Cipher, j.MAC}, 3))
		if j.Zlib {
			r.SetCompression("zlib")
		}
		for n, want := range theirs[i] {
			got, err := r.ReadPacket()
			if err != nil {
				t.Errorf("%s: reading paramiko's packet %d: %v", name, n, err)
				break
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s: paramiko's packet %d decoded differently", name, n)
				break
			}
		}
	}
}
