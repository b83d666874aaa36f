package client

import (
	"context"
	"fmt"
)

// reserve takes n bytes of buffer for a message, waiting while the buffer
// is full.
func (p *Producer) reserve(ctx context.Context, n int64) error {
	for {
		p.bufMu.Lock()
		if p.closed {
			p.bufMu.Unlock()
			return ErrClosed
		}
		if p.buffered == 0 || p.buffered+n <= p.cfg.bufferedBytes {
			p.buffered += n
			p.records++
			p.bufMu.Unlock()
			return nil
		}
		ch := p.bufChanged
		p.bufMu.Unlock()
		select {
		case <-ch:
		case <-p.closing:
		case <-ctx.Done():
			return fmt.Errorf("ledgermq: produce: waiting for buffer space: %w", ctx.Err())
		}
	}
}

// release returns buffer bytes and completed messages.
func (p *Producer) release(bytes int64, records int64) {
	p.bufMu.Lock()
	p.buffered -= bytes
	p.records -= records
	close(p.bufChanged)
	p.bufChanged = make(chan struct{})
	p.bufMu.Unlock()
}

// fail reports an error for a record that never made it into a batch.
func (p *Producer) fail(r *record, queue int, err error) {
	p.release(int64(r.size), 0)
	r.cb(Result{Topic: r.topic, Queue: queue}, err)
	p.release(0, 1)
}
