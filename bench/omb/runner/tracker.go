package runner

import "sync"

// tracker remembers, per producer, which message ids were acknowledged and
// how often each was received. Message ids are producer<<40 | sequence.
type tracker struct {
	per []*idSet
}

type idSet struct {
	mu sync.Mutex
	st []uint8 // bit 7: acknowledged; bits 0-6: times received (saturating)
}

const ackedBit = 0x80

func newTracker(producers int) *tracker {
	t := &tracker{per: make([]*idSet, producers)}
	for i := range t.per {
		t.per[i] = &idSet{}
	}
	return t
}

func makeID(producer int, seq uint64) uint64 { return uint64(producer)<<40 | seq }

func (t *tracker) slot(id uint64, f func(s *uint8)) bool {
	p, seq := int(id>>40), int(id&(1<<40-1))
	if p >= len(t.per) {
		return false
	}
	s := t.per[p]
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq >= len(s.st) {
		s.st = append(s.st, make([]uint8, seq+1-len(s.st)+1024)...)
	}
	f(&s.st[seq])
	return true
}

func (t *tracker) acked(id uint64) { t.slot(id, func(s *uint8) { *s |= ackedBit }) }

// received records one reception; it reports false for an unknown id.
func (t *tracker) received(id uint64) bool {
	return t.slot(id, func(s *uint8) {
		if *s&0x7f < 0x7f {
			*s++
		}
	})
}

// counts returns acknowledged ids, those never received and the
// receptions beyond the first.
func (t *tracker) counts() (acked, lost, dups int64) {
	for _, s := range t.per {
		s.mu.Lock()
		for _, v := range s.st {
			n := int64(v & 0x7f)
			if v&ackedBit != 0 {
				acked++
				if n == 0 {
					lost++
				}
			}
			if n > 1 {
				dups += n - 1
			}
		}
		s.mu.Unlock()
	}
	return
}

// stored compares a second read-back (other, receptions only) with t's
// acknowledgements: acknowledged ids other never received, and
// receptions beyond the first in other.
func (t *tracker) stored(other *tracker) (lost, dups int64) {
	for p, s := range t.per {
		o := other.per[p]
		s.mu.Lock()
		o.mu.Lock()
		for seq, v := range s.st {
			var n int64
			if seq < len(o.st) {
				n = int64(o.st[seq] & 0x7f)
			}
			if v&ackedBit != 0 && n == 0 {
				lost++
			}
		}
		for _, v := range o.st {
			if n := int64(v & 0x7f); n > 1 {
				dups += n - 1
			}
		}
		o.mu.Unlock()
		s.mu.Unlock()
	}
	return
}
