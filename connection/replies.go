package connection

import "sync"

// replySeq keeps replies to incoming requests in the order the requests
// arrived. RFC 4254 §4 and §5.4 match replies to requests by order alone,
// so a reply to request n+1 must wait until request n is answered, even when
// the server layer answers them from different goroutines.
type replySeq struct {
	mu      sync.Mutex
	flushMu sync.Mutex // held while writing, so replies leave in order
	base    uint64     // sequence number of entries[0]
	entries []replyEntry
	limit   int
	dead    bool
}

type replyEntry struct {
	answered bool
	ok       bool
	payload  []byte
}

// add reserves the next reply slot. It returns false when limit slots are
// already outstanding: the peer has that many unanswered requests.
func (q *replySeq) add() (uint64, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.entries) >= q.limit {
		return 0, false
	}
	q.entries = append(q.entries, replyEntry{})
	return q.base + uint64(len(q.entries)-1), true
}

// answer records the reply for slot seq.
func (q *replySeq) answer(seq uint64, ok bool, payload []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.dead || seq < q.base || seq-q.base >= uint64(len(q.entries)) {
		return
	}
	q.entries[seq-q.base] = replyEntry{answered: true, ok: ok, payload: payload}
}

// flush writes every answered reply at the head of the queue, in order.
func (q *replySeq) flush(write func(ok bool, payload []byte) error) error {
	q.flushMu.Lock()
	defer q.flushMu.Unlock()
	for {
		q.mu.Lock()
		if q.dead || len(q.entries) == 0 || !q.entries[0].answered {
			q.mu.Unlock()
			return nil
		}
		e := q.entries[0]
		n := copy(q.entries, q.entries[1:])
		q.entries[n] = replyEntry{}
		q.entries = q.entries[:n]
		q.base++
		q.mu.Unlock()
		if err := write(e.ok, e.payload); err != nil {
			return err
		}
	}
}

// abandon drops every outstanding slot: the channel or connection is gone
// and no reply may be sent any more.
func (q *replySeq) abandon() {
	q.mu.Lock()
	q.dead = true
	q.entries = nil
	q.mu.Unlock()
}
